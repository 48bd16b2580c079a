// Commands: buffer groups shared by several streams, each a scenario on a
// ring of its own (closed at its end, so the rest of the model is not
// disturbed): one consumer that stops reading while others must go on
// (starvation), chunks dropped unreleased under forced GC (leaks), several
// receives of one stream at once (order), and many receives waiting on a
// dry group (the cost of a release). Bytes are checked exactly: byte i of
// stream j is (i * 7 + j) & 255.

import fc from 'fast-check'
import { Cmd } from './cmd.js'
import { cover, fail, sleep, waitUntil, zcio } from './model.js'
import type { Group, Stream } from './net-model.js'
import type { World } from './world.js'

type Ring = InstanceType<typeof zcio.Ring>
type Pair = { client: Stream; server: Stream }

let nextGroupId = 0

/** A ring with `n` loopback pairs and a group of `count` buffers of `size`. */
async function scene(n: number, size: number, count: number): Promise<{ ring: Ring; group: Group; pairs: Pair[] }> {
  const ring = new zcio.Ring()
  const l = zcio.TcpListener.bind(ring, { port: 0 })
  const pairs: Pair[] = []
  for (let i = 0; i < n; i++) {
    const accepted = l.accept()
    const client = await zcio.TcpStream.connect(ring, { port: l.address.port! })
    pairs.push({ client, server: (await accepted)! })
  }
  l.close()
  const group = new zcio.BufferGroup(ring, { groupId: nextGroupId++ % 65536, bufferSize: size, bufferCount: count })
  return { ring, group, pairs }
}

async function teardown(s: { ring: Ring; pairs: Pair[] }): Promise<void> {
  await Promise.all(s.pairs.flatMap((p) => [p.client.close(), p.server.close()]))
  s.ring.close()
}

function pattern(j: number, from: number, n: number): Uint8Array {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = ((from + i) * 7 + j) & 255
  return b
}

/** Checks that `data` are the bytes of stream `j` from `at`; returns the new offset. */
function expectBytes(what: string, j: number, at: number, data: Uint8Array): number {
  for (let i = 0; i < data.length; i++) {
    if (data[i] !== (((at + i) * 7 + j) & 255)) fail(`${what}: byte ${at + i} is ${data[i]}, expected ${((at + i) * 7 + j) & 255}`)
  }
  return at + data.length
}

/** Sends `total` bytes of stream `j` in blocks, then shuts down; stops quietly once the stream closes. */
async function sendAll(s: Stream, j: number, total: number, block: number): Promise<void> {
  try {
    for (let at = 0; at < total; at += block) await s.send(pattern(j, at, Math.min(block, total - at)))
    s.shutdown('write')
  } catch {
    // closed at teardown
  }
}

type Form = 'multishot' | 'callback' | 'node' | 'recv'

/** A consumer of stream `j` in `form`; `stop` makes it stop reading until `go()`. */
function consume(group: Group, p: Pair, j: number, form: Form, stall: boolean): { got: () => number; ended: () => boolean; go: () => void } {
  let got = 0
  let ended = false
  let stalled = stall
  const what = `${form} consumer of stream ${j}`
  const onData = (data: Uint8Array): void => {
    got = expectBytes(what, j, got, data)
  }
  let go = (): void => {}
  if (form === 'node') {
    const d = p.server.toNodeStream(group)
    d.on('error', () => {})
    d.on('end', () => (ended = true))
    d.on('data', (b: Buffer) => {
      onData(b)
      if (stalled) d.pause()
    })
    go = () => {
      stalled = false
      d.resume()
    }
  } else if (form === 'callback') {
    const held: number[] = []
    group.recvCallback(p.server, {
      onChunk: (id, offset, length) => {
        onData(group.buffer.subarray(id * group.bufferSize + offset, id * group.bufferSize + offset + length))
        if (stalled) held.push(id)
        else group.put(id)
      },
      onEnd: () => (ended = true),
    })
    go = () => {
      stalled = false
      for (const id of held.splice(0)) group.put(id)
    }
  } else if (form === 'multishot') {
    const it = group.recvMultishot(p.server)
    const loop = async (): Promise<void> => {
      for (;;) {
        if (stalled) return
        let n: IteratorResult<{ data: Uint8Array; release(): void }>
        try {
          n = await it.next()
        } catch {
          return
        }
        if (n.done) {
          ended = true
          return
        }
        onData(n.value.data)
        n.value.release()
        if (stalled) return // took one, then stops taking
      }
    }
    void loop()
    go = () => {
      stalled = false
      void loop()
    }
  } else {
    const loop = async (): Promise<void> => {
      while (!stalled) {
        let c: { data: Uint8Array; release(): void } | null
        try {
          c = await group.recv(p.server)
        } catch (e) {
          if ((e as { code?: string }).code === 'ENOBUFS') {
            await sleep(1)
            continue
          }
          return
        }
        if (c === null) {
          ended = true
          return
        }
        onData(c.data)
        c.release()
      }
    }
    void loop()
    go = () => {
      stalled = false
      void loop()
    }
  }
  return { got: () => got, ended: () => ended, go }
}

/** Several streams on one small group; stream 0's consumer stops reading; the others must still get everything. */
class SharedGroup extends Cmd {
  constructor(readonly streams: number, readonly count: number, readonly stalledForm: Form, readonly forms: Form[], readonly kib: number) {
    super()
  }
  async act(w: World) {
    const s = await scene(this.streams, 1024, this.count)
    try {
      const stalledTotal = (this.count * 4 + 8) * 1024
      const total = this.kib * 1024
      void sendAll(s.pairs[0].client, 0, stalledTotal, 16384)
      const slow = consume(s.group, s.pairs[0], 0, this.stalledForm, true)
      await waitUntil(() => slow.got() > 0, 2000)
      await sleep(30)
      const others = s.pairs.slice(1).map((p, k) => {
        void sendAll(p.client, k + 1, total, 4096)
        return consume(s.group, p, k + 1, this.forms[k % this.forms.length], false)
      })
      const ok = await waitUntil(() => others.every((o) => o.ended()), 5000)
      const held = s.group.heldCount
      w.log(`  stalled ${this.stalledForm} holds ${held} of ${this.count} buffers; others got ${others.map((o) => o.got()).join(', ')} of ${total}`)
      if (!ok) fail(`starved: with stream 0's ${this.stalledForm} consumer stopped, the others got ${others.map((o) => o.got()).join(', ')} of ${total} bytes (group of ${this.count}, ${held} held)`)
      for (const o of others) if (o.got() !== total) fail(`a stream ended after ${o.got()} of ${total} bytes`)
      cover(`shared group: others served while ${this.stalledForm} stalls`)
      slow.go()
      if (!(await waitUntil(() => slow.ended(), 5000))) fail(`the stalled ${this.stalledForm} consumer, reading again, got ${slow.got()} of ${stalledTotal} bytes and no end`)
      if (slow.got() !== stalledTotal) fail(`the stalled consumer got ${slow.got()} of ${stalledTotal} bytes`)
      await sleep(5)
      const st = s.group.stats()
      if (st.chunkCount !== 0 || st.availableCount !== st.bufferCount) fail(`after every consumer ended: ${JSON.stringify(st)}`)
    } finally {
      await teardown(s)
    }
  }
  toString() {
    return `shared group of ${this.count} by ${this.streams} streams, stream 0 (${this.stalledForm}) stalls, others ${this.forms.join('/')} get ${this.kib} KiB`
  }
}

/** Chunks dropped without release under forced GC: the group must not run dry, and each is counted once. */
class DroppedChunks extends Cmd {
  constructor(readonly n: number, readonly multishot: boolean, readonly releaseMask: number) {
    super()
  }
  async act(w: World) {
    if (typeof globalThis.gc !== 'function') return
    const s = await scene(1, 64, 1 + (this.n % 2))
    const p = s.pairs[0]
    const before = s.group.leakedCount
    let dropped = 0
    let got = 0
    const collector = setInterval(() => globalThis.gc!(), 3)
    try {
      // In frames of their own: a suspended loop would keep the last chunk alive.
      const take = (c: { data: Uint8Array; release(): void } | null | undefined, k: number): boolean => {
        if (!c) return false
        got = expectBytes('dropped-chunk receive', 0, got, c.data)
        if ((this.releaseMask >> k) & 1) c.release()
        else dropped++
        return true
      }
      const it = this.multishot ? s.group.recvMultishot(p.server) : null
      /** One recv(): ENOBUFS until the dropped chunk is collected, then the data. */
      const recvOne = async (k: number, until: number): Promise<boolean> => {
        for (;;) {
          const r = await s.group.recv(p.server).then((c) => take(c, k), (e) => (e as { code?: string }).code)
          if (r !== 'ENOBUFS' || Date.now() > until) return r === true
          cover('recv: ENOBUFS until a dropped chunk is collected')
          await sleep(2)
        }
      }
      for (let k = 0; k < this.n; k++) {
        await p.client.send(pattern(0, got, 8))
        const ok = await Promise.race([
          (it ? it.next().then((r) => take(r.done ? null : r.value, k)) : recvOne(k, Date.now() + 3000)).catch(() => false),
          sleep(3000).then(() => false),
        ])
        if (!ok) fail(`receive ${k + 1} of ${this.n} got nothing within 3 s (${dropped} chunks dropped so far; ${JSON.stringify(s.group.stats())})`)
      }
      if (it) await it.return!()
      if (!(await waitUntil(() => s.group.leakedCount - before === dropped, 3000))) {
        fail(`${dropped} chunks dropped, leakedCount went up by ${s.group.leakedCount - before}`)
      }
      await sleep(10)
      if (s.group.leakedCount - before !== dropped) fail(`leakedCount went up by ${s.group.leakedCount - before} for ${dropped} dropped (a chunk given back twice?)`)
      const st = s.group.stats()
      if (st.chunkCount !== 0) fail(`every chunk released or collected, chunkCount ${st.chunkCount}`)
      w.log(`  ${dropped} of ${this.n} chunks dropped, all given back`)
      cover(`dropped chunks reclaimed (${this.multishot ? 'multishot' : 'recv'})`)
    } finally {
      clearInterval(collector)
      await teardown(s)
    }
  }
  toString() {
    return `${this.n} ${this.multishot ? 'multishot' : 'recv'} chunks, released by mask ${this.releaseMask.toString(2)}, the rest dropped under GC`
  }
}

/** Several recv() of one stream at once: each gets the next message, in call order; a continuous receive beside them is refused. */
class ConcurrentRecv extends Cmd {
  constructor(readonly k: number, readonly mixAt: number) {
    super()
  }
  async act(w: World) {
    const s = await scene(1, 256, 8)
    const p = s.pairs[0]
    try {
      const results: Promise<string>[] = []
      for (let i = 0; i < this.k; i++) {
        results.push(
          s.group.recv(p.server).then(
            (c) => {
              if (c === null) return 'end'
              const t = Buffer.from(c.data).toString()
              c.release()
              return t
            },
            (e) => `error ${(e as { code?: string }).code}`,
          ),
        )
        if (i === this.mixAt) {
          let code: string | undefined
          try {
            s.group.recvMultishot(p.server)
          } catch (e) {
            code = (e as { code?: string }).code
          }
          if (code !== 'ERR_ZCIO_RECV_PENDING') fail(`recvMultishot beside pending recv(): ${code ?? 'accepted'}, expected ERR_ZCIO_RECV_PENDING`)
        }
      }
      for (let i = 0; i < this.k; i++) {
        await sleep(3)
        await p.client.send(Buffer.from(`m${i}`))
      }
      const got = await Promise.all(results)
      const want = Array.from({ length: this.k }, (_, i) => `m${i}`)
      if (got.join() !== want.join()) fail(`${this.k} concurrent recv() got ${got.join(', ')}; expected ${want.join(', ')}`)
      // A continuous receive: recv() beside it rejects.
      const it = s.group.recvMultishot(p.server)
      const code = await s.group.recv(p.server).then(() => 'resolved', (e) => (e as { code?: string }).code)
      if (code !== 'ERR_ZCIO_RECV_PENDING') fail(`recv() beside recvMultishot: ${code}, expected ERR_ZCIO_RECV_PENDING`)
      await it.return!()
      w.log(`  ${this.k} receives in order`)
      cover('concurrent recv in call order')
    } finally {
      await teardown(s)
    }
  }
  toString() {
    return `${this.k} concurrent recv() on one stream (multishot tried after #${this.mixAt})`
  }
}

/** Many receives waiting on a dry group: each release costs a few re-arms, not one per waiting receive. */
class DryGroup extends Cmd {
  constructor(readonly n: number, readonly releases: number) {
    super()
  }
  async act(w: World) {
    const s = await scene(this.n, 64, 1)
    try {
      const held: number[] = []
      for (const p of s.pairs) s.group.recvCallback(p.server, { onChunk: (id) => held.push(id) })
      for (const p of s.pairs) await p.client.send(new Uint8Array(4))
      await waitUntil(() => held.length === 1, 2000)
      await sleep(10)
      const before = s.group.stats()
      let served = 0
      for (let k = 0; k < this.releases && held.length > 0; k++) {
        s.group.put(held.shift()!)
        if (!(await waitUntil(() => held.length === 1, 2000))) break
        served++
      }
      const after = s.group.stats()
      const work = after.rearmCount - before.rearmCount + after.enobufsCount - before.enobufsCount
      w.log(`  ${this.n} waiting, ${served} releases served: ${work} re-arms and ENOBUFS`)
      if (served < Math.min(this.releases, this.n - 1)) fail(`${served} of ${this.releases} releases reached a waiting receive (${this.n} waiting)`)
      if (work > 6 * this.releases + 8) fail(`${work} re-arms and ENOBUFS for ${this.releases} releases with ${this.n} receives waiting`)
      while (held.length > 0) s.group.put(held.shift()!)
      cover('dry group: release cost bounded')
    } finally {
      await teardown(s)
    }
  }
  toString() {
    return `${this.n} receives waiting on a 1-buffer group, ${this.releases} releases`
  }
}

const form = fc.constantFrom<Form>('multishot', 'callback', 'node')

export const groupCmd = fc.oneof(
  {
    weight: 2,
    arbitrary: fc
      .record({
        n: fc.integer({ min: 2, max: 4 }),
        c: fc.constantFrom(4, 8, 16),
        stalled: form,
        forms: fc.array(fc.constantFrom<Form>('multishot', 'callback', 'node', 'recv'), { minLength: 1, maxLength: 3 }),
        kib: fc.integer({ min: 1, max: 96 }),
      })
      .map(({ n, c, stalled, forms, kib }) => new SharedGroup(n, c, stalled, forms, kib)),
  },
  {
    weight: 1,
    arbitrary: fc
      .record({ n: fc.integer({ min: 1, max: 6 }), m: fc.boolean(), mask: fc.nat(63) })
      .map(({ n, m, mask }) => new DroppedChunks(n, m, mask)),
  },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.integer({ min: 2, max: 5 }), at: fc.nat(5) }).map(({ k, at }) => new ConcurrentRecv(k, at)),
  },
  {
    weight: 1,
    arbitrary: fc.record({ n: fc.integer({ min: 2, max: 120 }), k: fc.integer({ min: 1, max: 20 }) }).map(({ n, k }) => new DryGroup(n, k)),
  },
)
