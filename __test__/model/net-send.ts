// Commands: sends on connected streams (send, sendZc of one or several
// buffers, sendZcBatch), from Uint8Arrays and from pool buffers, and what
// their outcomes must be.

import fc from 'fast-check'
import { Cmd } from './cmd.js'
import { NewPair } from './net-life.js'
import { checkErrorShape, cover, fail, show, thrownCode, zcio } from './model.js'
import {
  type NetBufM, type SendM, type StreamM, UNREAD_CAP, appendOut, liveStreams, payload, unread,
} from './net-model.js'
import type { World } from './world.js'

/** Errors a send may end with once its stream, its peer or its ring went away. */
function allowedFailures(s: StreamM, x: SendM): string[] {
  const out: string[] = []
  if (s.closed) out.push('ERR_ZCIO_CLOSED', 'ECANCELED', 'EPIPE', 'ECONNRESET')
  if (s.peer.closed) out.push('EPIPE', 'ECONNRESET', 'ECANCELED')
  if (x.afterShut) out.push('EPIPE')
  if (x.transferred) out.push('ERR_ZCIO_DETACHED')
  if (s.ring.closed) out.push('ECANCELED', 'ERR_ZCIO_CLOSED')
  return out
}

/** A stream the program holds: an open one 7 times out of 8 when there is one. */
export function pickStream(w: World, n: number): StreamM | null {
  const live = liveStreams(w)
  if (live.length === 0) return null
  const open = live.filter((s) => !s.closed && !s.ring.closed)
  return open.length > 0 && n % 8 !== 0 ? open[(n >> 3) % open.length] : live[n % live.length]
}

type Item = { kind: 'u8'; len: number } | { kind: 'pool'; at: number; len: number }

interface Built {
  data: (Uint8Array | { pool: unknown; index: number; offset: number; length: number })[]
  bytes: Uint8Array[]
  bufs: NetBufM[]
}

/** A pool buffer to send from: one already in use (not refilled), or a fresh one filled with known bytes. */
function poolBuffer(w: World, s: StreamM, seed: number): NetBufM | null {
  const p = s.ring.pool
  if (!p?.real || s.ring.closed) return null
  const used = p.bufs.filter((b) => b.acquired && !b.poisoned)
  if (used.length > 0 && seed % 2 === 0) return used[seed % used.length]
  const free = p.bufs.filter((b) => !b.acquired && !b.poisoned)
  if (free.length === 0) return used.length > 0 ? used[seed % used.length] : null
  let got = p.real.acquire()
  // A buffer released under a queued send (the known issue) is taken out of use.
  while (p.bufs[got.index]?.poisoned && !p.bufs[got.index].acquired) {
    p.bufs[got.index].acquired = true
    if (p.bufs.every((x) => x.acquired)) return null
    got = p.real.acquire()
  }
  const b = p.bufs[got.index]
  if (!b || b.acquired || b.poisoned) fail(`the send pool of ${s.ring.name} gave buffer ${got.index}, which is in use`)
  b.acquired = true
  got.buffer.set(payload(p.size, seed, 0))
  w.log(`  ${s.ring.name}.pool.acquire() -> ${got.index}, filled`)
  return b
}

function build(w: World, s: StreamM, items: Item[], seed: number): Built {
  const out: Built = { data: [], bytes: [], bufs: [] }
  items.forEach((it, k) => {
    const b = it.kind === 'pool' ? poolBuffer(w, s, seed + k) : null
    if (!b || it.kind !== 'pool') {
      const bytes = payload(it.kind === 'pool' ? 1 + (it.len % 16384) : it.len, seed + k, s.outLen)
      out.data.push(bytes)
      out.bytes.push(bytes)
      return
    }
    const p = s.ring.pool!
    const offset = it.at % p.size
    const length = 1 + (it.len % Math.min(16384, p.size - offset))
    out.data.push({ pool: p.real, index: b.index, offset, length })
    out.bytes.push(p.real!.get(b.index).slice(offset, offset + length))
    out.bufs.push(b)
  })
  return out
}

/** After a pool send settled: the buffer is the program's again (released here when no other send uses it). */
function afterSend(w: World, x: SendM): void {
  const p = x.stream.ring.pool!
  for (const b of x.bufs) {
    b.sends--
    if (b.sends > 0 || !b.acquired || !p.real) continue
    const res = thrownCode(() => p.real!.release(b.index))
    if (x.stream.ring.closed) {
      if (res.threw) checkErrorShape(res.error, 'ERR_ZCIO_CLOSED', `${x.stream.ring.name}.pool.release(${b.index})`)
    } else if (res.threw) {
      fail(`${x.stream.ring.name}.pool.release(${b.index}) after ${x.label} settled threw ${res.code}: the buffer is still in flight`)
    }
    b.acquired = false
    cover('pool buffer released after its send settled')
  }
}

/** Right after the call: a pool buffer in a send is in flight until the send settles. */
function checkInFlight(w: World, x: SendM): void {
  const s = x.stream
  const p = s.ring.pool!
  // A send refused at once (closed stream or ring, write side shut down)
  // never holds its buffers.
  if (s.closed || s.ring.closed || s.shutWrite || !p.real) return
  for (const b of new Set(x.bufs)) {
    if (!b.acquired) continue
    const res = thrownCode(() => p.real!.release(b.index))
    if (res.threw) {
      checkErrorShape(res.error, 'ERR_ZCIO_BUFFER_IN_FLIGHT', `${s.ring.name}.pool.release(${b.index}) during ${x.label}`)
      continue
    }
    // The buffer of a send queued behind another was released.
    if (!w.known('queued-send-release')) fail(`${s.ring.name}.pool.release(${b.index}) succeeded while ${x.label} had not settled`)
    cover('known issue: pool buffer of a queued send released')
    b.acquired = false
    b.poisoned = true
    s.cut = Math.min(s.cut, x.start)
    s.notAcquiredFrom = Math.min(s.notAcquiredFrom, x.start)
  }
}

/** Records a send in the model (its bytes go at the end of the direction). */
function prepareSend(w: World, s: StreamM, items: Item[], zc: boolean, seed: number): { x: SendM; data: unknown[] } {
  const built = build(w, s, items, seed)
  const len = built.bytes.reduce((a, b) => a + b.length, 0)
  // After shutdown('write') a send is refused (EPIPE) and sends nothing.
  const open = !s.closed && !s.ring.closed && !s.shutWrite
  const start = open ? s.outLen : -1
  if (open) for (const b of built.bytes) appendOut(s, b)
  // A zero-copy send on a Unix socket fails (EOPNOTSUPP) and sends nothing;
  // the sends after it may arrive before the model hears of the failure (in
  // a batch, when the whole batch resolves): the bytes from it on are unknown.
  if (open && zc && s.unix) s.cut = Math.min(s.cut, start)
  const x: SendM = { label: '', stream: s, zc, start, len, bufs: built.bufs, settled: false, batched: false, afterShut: s.shutWrite }
  const shown = built.data.map((d) => (d instanceof Uint8Array ? `${d.length} bytes` : `pool[${d.index}] ${d.offset}+${d.length}`)).join(', ')
  x.label = `${s.name}.${zc ? 'sendZc' : 'send'}(${shown}) @${start}`
  for (const b of built.bufs) b.sends++
  s.sends.add(x)
  w.log(`  ${x.label}`)
  return { x, data: built.data }
}

/** Records a send of `bytes` whose ArrayBuffer the caller transfers right after the call. */
export function prepareTransferSend(w: World, s: StreamM, bytes: Uint8Array): SendM {
  const open = !s.closed && !s.ring.closed && !s.shutWrite
  const start = open ? s.outLen : -1
  if (open) appendOut(s, bytes)
  const x: SendM = {
    label: `${s.name}.send(${bytes.length} bytes, transferred) @${start}`,
    stream: s, zc: false, start, len: bytes.length, bufs: [], settled: false, batched: false, afterShut: s.shutWrite, transferred: true,
  }
  s.sends.add(x)
  w.log(`  ${x.label}`)
  return x
}

function issueSend(w: World, s: StreamM, items: Item[], zc: boolean, seed: number): void {
  const { x, data } = prepareSend(w, s, items, zc, seed)
  const real = s.real!
  let promise: Promise<unknown>
  try {
    promise = zc ? real.sendZc((data.length === 1 && seed % 2 === 0 ? data[0] : data) as never) : real.send(data[0] as never)
  } catch (e) {
    fail(`${x.label} threw synchronously (${(e as { code?: string }).code}); promise methods must reject`)
  }
  checkInFlight(w, x)
  w.track(promise, x.label)
  promise.then(
    (v) => settled(w, x, v, undefined),
    (e) => settled(w, x, undefined, e),
  )
}

export function settled(w: World, x: SendM, value: unknown, error: unknown): void {
  try {
    x.settled = true
    x.stream.sends.delete(x)
    afterSend(w, x)
    const s = x.stream
    const allowed = allowedFailures(s, x)
    if (x.bufs.some((b) => b.poisoned) || (x.start >= s.notAcquiredFrom)) allowed.push('ERR_ZCIO_NOT_ACQUIRED')
    if (s.unix && x.zc) allowed.push('ENOTSUP', 'EOPNOTSUPP')
    if (error !== undefined) {
      const code = (error as { code?: string }).code ?? '?'
      w.log(`  ${x.label} -> ${code}`)
      cover(`${x.zc ? 'sendZc' : 'send'} rejected: ${code}`)
      if (!allowed.includes(code)) fail(`${x.label} rejected with ${code} (${(error as Error).message}); expected success${allowed.length ? ` or ${[...new Set(allowed)].join('/')}` : ''}`)
      if (x.start >= 0) s.cut = Math.min(s.cut, x.start)
      return
    }
    if (!x.zc) {
      if (value !== x.len) fail(`${x.label} resolved with ${show(value)}, expected ${x.len}`)
      cover('send resolved')
      return
    }
    const r = value as { bytes: number; copied: boolean; unsent: number[] }
    if (typeof r !== 'object' || typeof r.bytes !== 'number' || typeof r.copied !== 'boolean' || !Array.isArray(r.unsent)) fail(`${x.label} resolved with ${show(value)}`)
    w.log(`  ${x.label} -> ${show(r)}`)
    if (r.bytes > x.len) fail(`${x.label} sent ${r.bytes} bytes of ${x.len}`)
    if (r.bytes < x.len || r.unsent.length > 0) {
      cover('sendZc resolved part-way')
      if (allowed.length === 0) fail(`${x.label} resolved with ${show(r)} with both ends open`)
      if (x.start >= 0) s.cut = Math.min(s.cut, x.start)
      return
    }
    // Loopback always copies (documented).
    // (A send cut short by close() may report no copy.)
    if (!s.unix && r.bytes > 0 && !r.copied && allowed.length === 0) fail(`${x.label} over loopback resolved with copied: false`)
    cover('sendZc resolved')
  } catch (err) {
    w.asyncFail(err)
  }
}

class Send extends Cmd {
  constructor(readonly stream: number, readonly zc: boolean, readonly items: Item[], readonly seed: number) {
    super()
  }
  async act(w: World) {
    if (liveStreams(w).length === 0) await new NewPair(this.stream, false, false).act(w)
    const s = pickStream(w, this.stream)
    if (!s) return
    const len = this.items.reduce((a, it) => a + (it.kind === 'u8' ? it.len : 16384), 0)
    if (!s.closed && !s.ring.closed && unread(s) + len > UNREAD_CAP) {
      w.log(`  (${s.name} has ${unread(s)} bytes unread: skipped)`)
      return
    }
    issueSend(w, s, this.zc ? this.items : this.items.slice(0, 1), this.zc, this.seed)
  }
  toString() {
    const items = (this.zc ? this.items : this.items.slice(0, 1)).map((it) => (it.kind === 'u8' ? `${it.len} bytes` : `pool @${it.at} len ${it.len}`))
    return `stream #${this.stream}.${this.zc ? 'sendZc' : 'send'}(${items.join(', ')}, seed ${this.seed})`
  }
}

class SendBatch extends Cmd {
  constructor(readonly msgs: { stream: number; items: Item[] }[], readonly invalid: boolean, readonly onRing: boolean, readonly seed: number) {
    super()
  }
  check(w: World) {
    return liveStreams(w).length > 0
  }
  act(w: World) {
    const xs: (SendM | null)[] = []
    const messages: { stream: unknown; buffers: unknown }[] = []
    let ring = null
    for (const [k, m] of this.msgs.entries()) {
      const s = pickStream(w, m.stream)!
      const len = m.items.reduce((a, it) => a + (it.kind === 'u8' ? it.len : 16384), 0)
      if (!s.closed && !s.ring.closed && unread(s) + len > UNREAD_CAP) continue
      const { x, data } = prepareSend(w, s, m.items, true, this.seed + 7 * k)
      x.batched = true
      ring = s.ring.real
      xs.push(x)
      messages.push({ stream: s.real, buffers: data.length === 1 && k % 2 === 0 ? data[0] : data })
    }
    if (xs.length === 0) return
    if (this.invalid) {
      const at = this.seed % (messages.length + 1)
      messages.splice(at, 0, { stream: {}, buffers: new Uint8Array(1) })
      xs.splice(at, 0, null)
    }
    const what = `${this.onRing && ring ? 'ring.' : ''}sendZcBatch([${xs.map((x) => x?.label ?? 'an invalid stream').join('; ')}])`
    w.log(`  ${what}`)
    let promise: Promise<unknown[]>
    try {
      promise = this.onRing && ring ? ring.sendZcBatch(messages as never) : zcio.sendZcBatch(messages as never)
    } catch (e) {
      fail(`${what} threw synchronously (${(e as { code?: string }).code})`)
    }
    for (const x of xs) if (x) checkInFlight(w, x)
    w.track(promise, what)
    promise.then(
      (res) => {
        try {
          if (!Array.isArray(res) || res.length !== messages.length) fail(`${what} resolved with ${show(res)}`)
          xs.forEach((x, i) => {
            const r = res[i] as { error?: Error }
            if (x === null) {
              if (!r.error) fail(`${what}: the message with an invalid stream got ${show(r)}`)
              checkErrorShape(r.error, 'ERR_INVALID_ARG_TYPE', `${what} message ${i}`)
            } else if (r.error) settled(w, x, undefined, r.error)
            else settled(w, x, r, undefined)
          })
        } catch (err) {
          w.asyncFail(err)
        }
      },
      (e) => w.asyncFail(new Error(`${what} rejected with ${(e as { code?: string }).code}: ${(e as Error).message}`)),
    )
  }
  toString() {
    const m = this.msgs.map((x) => `stream #${x.stream}: ${x.items.map((it) => (it.kind === 'u8' ? `${it.len} bytes` : `pool @${it.at} len ${it.len}`)).join(', ')}`)
    return `${this.onRing ? 'ring.' : ''}sendZcBatch([${m.join('; ')}]${this.invalid ? ', invalid stream' : ''}, seed ${this.seed})`
  }
}

const item: fc.Arbitrary<Item> = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 6000 }).map((len): Item => ({ kind: 'u8', len })) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 40000 }).map((len): Item => ({ kind: 'u8', len })) },
  { weight: 3, arbitrary: fc.record({ at: fc.nat(70000), len: fc.nat(70000) }).map(({ at, len }): Item => ({ kind: 'pool', at, len })) },
)

export const sendCmd = fc.oneof(
  { weight: 5, arbitrary: fc.record({ s: fc.nat(1023), zc: fc.boolean(), items: fc.array(item, { minLength: 1, maxLength: 4 }), seed: fc.nat(255) }).map(({ s, zc, items, seed }) => new Send(s, zc, items, seed)) },
  {
    weight: 1,
    arbitrary: fc
      .record({
        m: fc.array(fc.record({ stream: fc.nat(1023), items: fc.array(item, { minLength: 1, maxLength: 3 }) }), { minLength: 1, maxLength: 3 }),
        bad: fc.nat(7).map((n) => n === 0),
        ring: fc.boolean(),
        seed: fc.nat(255),
      })
      .map(({ m, bad, ring, seed }) => new SendBatch(m, bad, ring, seed)),
  },
)
