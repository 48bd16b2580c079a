// Commands: receives through buffer groups (recv, recvMultishot,
// recvCallback), each chunk released at once, twice, or held for a while;
// stopping a receive; releasing held chunks.

import fc from 'fast-check'
import { Cmd } from './cmd.js'
import { cover, fail } from './model.js'
import {
  type ChunkM, type GroupM, type Policy, type RecvM, type RecvMode, type StreamM,
  heldBuffers, liveGroups, liveStreams, receivedBytes, releaseChunk,
} from './net-model.js'
import { NewPair, newGroup } from './net-life.js'
import { pickStream } from './net-send.js'
import type { World } from './world.js'

/** A chunk arrived for `r`: check its bytes, then hold or release it. */
function onChunk(w: World, r: RecvM, bufferId: number, view: Uint8Array, obj: ChunkM['obj']): void {
  const g = r.group
  const s = r.stream
  const how = `${r.label}: chunk of buffer ${bufferId}`
  if (!Number.isInteger(bufferId) || bufferId < 0 || bufferId >= g.count) fail(`${how}: no such buffer in ${g.name}`)
  if (view.length === 0 || view.length > g.size) fail(`${how}: ${view.length} bytes, buffers have ${g.size}`)
  if (g.chunks.some((c) => c.bufferId === bufferId)) fail(`${how}: that buffer is still held by ${g.chunks.find((c) => c.bufferId === bufferId)!.label}`)
  receivedBytes(w, s, view, how)
  const c: ChunkM = { group: g, bufferId, view, bytes: view.slice(), obj, label: `${g.name} chunk ${bufferId} (${view.length} bytes of ${s.name})` }
  g.chunks.push(c)
  g.deliveries++
  if (heldBuffers(g) === g.count) g.zeroEpoch++
  w.log(`  ${r.label} -> ${c.label}`)
  cover(`chunk received (${r.mode})`)
  if (r.policy !== 'hold') releaseChunk(w, c, r.policy === 'twice')
}

/** The receive ended: with end of stream (error undefined) or an error. */
function onEnd(w: World, r: RecvM, error: unknown): void {
  if (r.done) fail(`${r.label} ended twice`)
  r.done = true
  r.group.receivers.delete(r)
  const s = r.stream
  if (s.recv === r) s.recv = null
  const p = s.peer
  if (error === undefined) {
    w.log(`  ${r.label} -> end${r.stopped ? ' (stopped)' : ''}`)
    if (r.stopped && r.mode !== 'recv') {
      cover(`${r.mode} stopped`)
      return
    }
    cover(`${r.mode}: end of stream`)
    if (!p.shutWrite && !p.closed) fail(`${r.label} saw end of stream, but ${p.name} neither shut down nor closed`)
    // A zero-copy send on a Unix socket fails (EOPNOTSUPP), and cancels the
    // sends linked after it; in a batch the model hears of it only when the
    // whole batch settles, possibly after this end of stream.
    const failing = p.unix ? [...p.sends].filter((x) => !x.settled && x.zc && x.start >= 0).map((x) => x.start) : []
    const mayEndAt = failing.length > 0 ? Math.min(...failing) : -1
    if (p.cut === Infinity && s.inCut === Infinity && !p.closed && s.received !== p.outLen && s.received !== mayEndAt) {
      fail(`${r.label} saw end of stream after ${s.received} bytes; ${p.name} sent ${p.outLen}`)
    }
    s.eof = true
    return
  }
  const code = (error as { code?: string }).code ?? '?'
  w.log(`  ${r.label} -> ${code}`)
  cover(`${r.mode} ended: ${code}`)
  const allowed: string[] = []
  if (s.closed || s.ring.closed || r.group.ring.closed || r.stopped) allowed.push('ECANCELED', 'ERR_ZCIO_CLOSED')
  if (p.closed) allowed.push('ECONNRESET')
  if (r.group.closed) allowed.push('ERR_ZCIO_CLOSED')
  // Its descriptor was closed before the receive reached the kernel (the known issue).
  if (r.orphaned) allowed.push('EBADF')
  // Every buffer held, now or since it started (by the program, or by the
  // kernel for another receive of the group whose chunks came meanwhile).
  const g = r.group
  if (r.mode === 'recv' && (g.zeroEpoch > r.epoch || g.deliveries > r.deliveries || heldBuffers(g) === g.count)) allowed.push('ENOBUFS')
  if (code === 'ENOBUFS') r.group.enobufs++
  if (!allowed.includes(code)) fail(`${r.label} ended with ${code} (${(error as Error).message}); expected ${allowed.length ? allowed.join('/') : 'no error'}`)
}

export function startRecv(w: World, s: StreamM, g: GroupM, mode: RecvMode, policy: Policy): RecvM {
  const r: RecvM = {
    id: w.net.nextRecv++, mode, group: g, stream: s, policy, done: false, stopped: false, epoch: g.zeroEpoch, deliveries: g.deliveries, stop: null, orphaned: false, label: '',
  }
  r.label = `${mode}#${r.id}(${g.name}, ${s.name}, ${policy})`
  w.log(`  ${r.label}`)
  s.recv = r
  g.receivers.add(r)
  const group = g.real!
  const guard = (f: () => void) => {
    try {
      f()
    } catch (e) {
      w.asyncFail(e)
    }
  }
  if (mode === 'recv') {
    let promise: Promise<unknown>
    try {
      promise = group.recv(s.real!)
    } catch (e) {
      fail(`${r.label} threw synchronously (${(e as { code?: string }).code}); promise methods must reject`)
    }
    w.track(promise, r.label)
    promise.then(
      (c) => guard(() => {
        if (c === null) return onEnd(w, r, undefined)
        const chunk = c as NonNullable<ChunkM['obj']>
        if (r.done) fail(`${r.label} resolved after it ended`)
        r.done = true
        g.receivers.delete(r)
        if (s.recv === r) s.recv = null
        onChunk(w, r, chunk.bufferId, chunk.data, chunk)
      }),
      (e) => guard(() => onEnd(w, r, e)),
    )
    return r
  }
  if (mode === 'callback') {
    let ended!: () => void
    w.track(new Promise<void>((resolve) => (ended = resolve)), `${r.label} onEnd`)
    const region = group.buffer
    const handle = group.recvCallback(s.real!, {
      onChunk: (id, offset, length) => guard(() => {
        if (r.done) fail(`${r.label}: a chunk after onEnd`)
        onChunk(w, r, id, region.subarray(id * g.size + offset, id * g.size + offset + length), null)
      }),
      onEnd: (error) => {
        ended()
        guard(() => onEnd(w, r, error))
      },
    })
    r.stop = () => handle.stop()
    return r
  }
  const it = group.recvMultishot(s.real!)
  const pump = async (): Promise<void> => {
    for (;;) {
      let next: IteratorResult<NonNullable<ChunkM['obj']>>
      try {
        next = await it.next()
      } catch (e) {
        return guard(() => onEnd(w, r, e))
      }
      if (next.done) return guard(() => onEnd(w, r, undefined))
      const c = next.value
      guard(() => onChunk(w, r, c.bufferId, c.data, c))
    }
  }
  w.track(pump(), `${r.label} iteration`)
  r.stop = () => {
    const ret = it.return!()
    w.track(ret, `${r.label}.return()`)
  }
  return r
}

/** An open group on `s`'s ring, chosen by `n` (any live group 1 time out of 8). */
function pickGroup(w: World, s: StreamM, n: number): GroupM | null {
  const live = liveGroups(w)
  const mine = live.filter((g) => g.ring === s.ring && !g.closed)
  if (mine.length > 0 && n % 8 !== 0) return mine[(n >> 3) % mine.length]
  return live.length > 0 ? live[n % live.length] : null
}

class Recv extends Cmd {
  constructor(readonly stream: number, readonly group: number, readonly mode: RecvMode, readonly policy: Policy) {
    super()
  }
  async act(w: World) {
    // The first receive of a run makes what it needs.
    if (liveStreams(w).length === 0) await new NewPair(this.stream, false, false).act(w)
    const s = pickStream(w, this.stream)
    if (!s) return
    let g = pickGroup(w, s, this.group)
    if (!g && !s.ring.closed) g = newGroup(w, s.ring, this.group % 4, [16, 4096][this.group % 2], [1, 4, 8][this.group % 3])
    if (!g) return
    if (s.recv && !s.recv.done) {
      w.log(`  (${s.name} has a receive: skipped)`)
      return
    }
    // A group of another ring receives through its own ring (allowed); keep
    // each stream's receives on one ring at a time all the same.
    startRecv(w, s, g, this.mode, this.policy)
  }
  toString() {
    return `${this.mode}(group #${this.group}, stream #${this.stream}, release ${this.policy})`
  }
}

class StopRecv extends Cmd {
  constructor(readonly stream: number) {
    super()
  }
  check(w: World) {
    return liveStreams(w).length > 0
  }
  act(w: World) {
    const s = pickStream(w, this.stream)!
    const r = s.recv
    if (!r || r.done || !r.stop) return
    w.log(`  ${r.label}.stop()`)
    r.stopped = true
    r.stop()
    // Chunks still held stay valid; the receive ends soon.
  }
  toString() {
    return `stop the receive of stream #${this.stream}`
  }
}

class ReleaseChunks extends Cmd {
  constructor(readonly n: number, readonly which: number, readonly twice: boolean) {
    super()
  }
  act(w: World) {
    const held = w.net.groups.flatMap((g) => g.chunks.filter((c) => c.obj !== null || g.real !== null))
    for (let k = 0; k < this.n && held.length > 0; k++) {
      const c = held.splice((this.which + k) % held.length, 1)[0]
      releaseChunk(w, c, this.twice)
    }
  }
  toString() {
    return `release ${this.n} held chunk(s) from #${this.which}${this.twice ? ', twice' : ''}`
  }
}

const policy = fc.constantFrom<Policy>('now', 'now', 'hold', 'hold', 'twice')

export const recvCmd = fc.oneof(
  {
    weight: 5,
    arbitrary: fc
      .record({ s: fc.nat(1023), g: fc.nat(1023), m: fc.constantFrom<RecvMode>('recv', 'recv', 'multishot', 'callback'), p: policy })
      .map(({ s, g, m, p }) => new Recv(s, g, m, p)),
  },
  { weight: 1, arbitrary: fc.nat(1023).map((s) => new StopRecv(s)) },
  { weight: 3, arbitrary: fc.record({ n: fc.integer({ min: 1, max: 4 }), w: fc.nat(1023), t: fc.nat(5).map((x) => x === 0) }).map(({ n, w, t }) => new ReleaseChunks(n, w, t)) },
)

