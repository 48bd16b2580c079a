// The commands of the model-based test, as fast-check `AsyncCommand`s.
//
// Commands name rings, pools and buffers by number; the number is resolved
// against what exists when the command runs (modulo the live ones), so every
// generated sequence does something and shrinking keeps sequences meaningful.
// Each command acts, lets pending promise reactions run, then checks the
// whole world against the model (World.check).

import fc from 'fast-check'
import { getSystemErrorName, inspect } from 'node:util'
import { Worker } from 'node:worker_threads'
import {
  type BufM, type Op, type PoolM, type RingM, type Target, type WaiterM,
  FILE_SPAN, ModelError, PIPE_IO_MAX, RING_OP_CAP, SETTLE_TIMEOUT_MS,
  World, checkErrorShape, cover, fail, root, show, sleep, thrownCode, tick, zcio,
} from './world.js'

const MAX_RINGS = 6
const MAX_POOLS = 12
const MAX_WORKERS = 2
const MAX_BIG_POOLS = 2
const PIPE_READS_PENDING_MAX = 6

// ---------------------------------------------------------------------------

abstract class Cmd implements fc.AsyncCommand<World, World> {
  check(w: World): boolean {
    void w
    return true
  }

  async run(w: World): Promise<void> {
    w.commands++
    cover(`command ${this.constructor.name}`)
    w.log(`${this}`)
    await this.act(w)
    await tick()
    w.check(`after ${this}`)
  }

  protected abstract act(w: World): Promise<void> | void
  abstract toString(): string
}

const pickOf = <T>(xs: T[], n: number): T => xs[n % xs.length]

/** A pool the program holds: an open one 7 times out of 8 when there is one. */
function pickPool(w: World, n: number): PoolM {
  const live = livePools(w)
  const open = live.filter((p) => !isClosed(p))
  return open.length > 0 && n % 8 !== 0 ? open[(n >> 3) % open.length] : live[n % live.length]
}

/** A ring the program holds, preferring open ones likewise. */
function pickRing(w: World, n: number): RingM {
  const live = liveRings(w)
  const open = live.filter((r) => !r.closed)
  return open.length > 0 && n % 8 !== 0 ? open[(n >> 3) % open.length] : live[n % live.length]
}

function livePools(w: World): PoolM[] {
  return w.pools.filter((p) => p.real !== null)
}

function liveRings(w: World): RingM[] {
  return w.rings.filter((r) => r.real !== null)
}

function isClosed(p: PoolM): boolean {
  return p.closed || p.ring.closed
}

/** A buffer of the pool: one acquired (usually), or any index incl. one past the end. */
interface BufSel {
  any: boolean
  v: number
}

/** I/O needs an acquired buffer: take one first when the pool has none (logged). */
function ensureAcquired(w: World, p: PoolM, s: BufSel): void {
  if (!s.any && p.acquired.size === 0 && !isClosed(p) && p.free.length > 0) doAcquire(w, p, false)
}

function resolveBuf(p: PoolM, s: BufSel): number {
  if (s.any) {
    // Any index, including just past the end and the largest valid number.
    const i = s.v % (p.count + 2)
    return i === p.count + 1 ? 2 ** 32 - 1 : i
  }
  const acquired = [...p.acquired].sort((a, b) => a - b)
  return acquired.length > 0 ? acquired[s.v % acquired.length] : s.v % p.count
}

const bufSel: fc.Arbitrary<BufSel> = fc.record({ any: fc.nat(99).map((r) => r < 12), v: fc.nat(1023) })

// ---------------------------------------------------------------------------
// Rings and pools

type Bad = { value: unknown; code: string; label: string }

const badNumbers = (max: number): Bad[] => [
  { value: '1', code: 'ERR_INVALID_ARG_TYPE', label: `'1'` },
  { value: 1n, code: 'ERR_INVALID_ARG_TYPE', label: '1n' },
  { value: null, code: 'ERR_INVALID_ARG_TYPE', label: 'null' },
  { value: {}, code: 'ERR_INVALID_ARG_TYPE', label: '{}' },
  { value: true, code: 'ERR_INVALID_ARG_TYPE', label: 'true' },
  { value: Number.NaN, code: 'ERR_OUT_OF_RANGE', label: 'NaN' },
  { value: -1, code: 'ERR_OUT_OF_RANGE', label: '-1' },
  { value: 0.5, code: 'ERR_OUT_OF_RANGE', label: '0.5' },
  { value: Infinity, code: 'ERR_OUT_OF_RANGE', label: 'Infinity' },
  { value: -Infinity, code: 'ERR_OUT_OF_RANGE', label: '-Infinity' },
  { value: max + 1, code: 'ERR_OUT_OF_RANGE', label: String(max + 1) },
  { value: undefined, code: 'ERR_INVALID_ARG_TYPE', label: 'undefined' },
]

const ENTRIES = [1, 2, 3, 4, 5, 8, 16, 64, 256, 1024, 32768]
const BAD_RING_OPTIONS: Bad[] = [
  { value: { entries: 0 }, code: 'ERR_INVALID_ARG_VALUE', label: '{ entries: 0 }' },
  { value: { entries: 32769 }, code: 'ERR_INVALID_ARG_VALUE', label: '{ entries: 32769 }' },
  { value: { entries: -1 }, code: 'ERR_OUT_OF_RANGE', label: '{ entries: -1 }' },
  { value: { entries: 1.5 }, code: 'ERR_OUT_OF_RANGE', label: '{ entries: 1.5 }' },
  { value: { entries: Number.NaN }, code: 'ERR_OUT_OF_RANGE', label: '{ entries: NaN }' },
  { value: { entries: 2 ** 32 }, code: 'ERR_OUT_OF_RANGE', label: '{ entries: 2 ** 32 }' },
  { value: { entries: '8' }, code: 'ERR_INVALID_ARG_TYPE', label: `{ entries: '8' }` },
  { value: { entries: 8n }, code: 'ERR_INVALID_ARG_TYPE', label: '{ entries: 8n }' },
  { value: { entries: null }, code: 'ERR_INVALID_ARG_TYPE', label: '{ entries: null }' },
  { value: { sqpoll: 'yes' }, code: 'ERR_INVALID_ARG_TYPE', label: `{ sqpoll: 'yes' }` },
  { value: { sqpoll: -5 }, code: 'ERR_OUT_OF_RANGE', label: '{ sqpoll: -5 }' },
  { value: 5, code: 'ERR_INVALID_ARG_TYPE', label: '5' },
  { value: null, code: 'ERR_INVALID_ARG_TYPE', label: 'null' },
  { value: [], code: 'ERR_INVALID_ARG_TYPE', label: '[]' },
]

export function addRing(w: World, entries: number, sqpoll: boolean): RingM | null {
  if (w.rings.length >= MAX_RINGS) {
    w.log('  (ring limit reached: skipped)')
    return null
  }
  const options = sqpoll ? { entries, sqpoll: 10 } : { entries }
  let ring
  try {
    ring = new zcio.Ring(options)
  } catch (e) {
    const code = (e as { code?: string }).code
    // Some systems refuse a kernel submission thread (containers, policies).
    if (sqpoll && (code === 'EPERM' || code === 'EACCES' || code === 'ERR_ZCIO_URING_UNAVAILABLE')) {
      w.log(`  new Ring(${show(options)}) -> ${code}: SQPOLL refused here`)
      cover('SQPOLL ring refused by the system')
      return null
    }
    fail(`new Ring(${show(options)}) threw ${code}: ${(e as Error).message}`)
  }
  const r: RingM = {
    id: w.id(), name: `ring${w.rings.length}`, real: ring, entries, sqpoll, deferTaskrun: ring.features.deferTaskrun, closed: false,
    pools: [], ops: new Set(), manual: new Map(), waiters: [], table: [],
  }
  w.rings.push(r)
  w.log(`  ${r.name} = new Ring(${show(options)})${ring.features.sqpoll ? ' (sqpoll)' : ''}`)
  if (ring.inFlightCount !== 0 || ring.closed) fail(`a new ring has inFlightCount ${ring.inFlightCount}, closed ${ring.closed}`)
  return r
}

class NewRing extends Cmd {
  constructor(readonly entries: number, readonly sqpoll: boolean, readonly bad: Bad | null) {
    super()
  }
  act(w: World) {
    if (this.bad) {
      const r = thrownCode(() => new zcio.Ring(this.bad!.value as never))
      if (!r.threw) fail(`new Ring(${this.bad.label}) did not throw`)
      checkErrorShape(r.error, this.bad.code, `new Ring(${this.bad.label})`)
      return
    }
    addRing(w, this.entries, this.sqpoll)
  }
  toString() {
    return this.bad ? `new Ring(${this.bad.label})` : `new Ring({ entries: ${this.entries}${this.sqpoll ? ', sqpoll: 10' : ''} })`
  }
}

const newRing = fc.oneof(
  { weight: 4, arbitrary: fc.record({ e: fc.constantFrom(...ENTRIES), sq: fc.nat(15) }).map(({ e, sq }) => new NewRing(e, sq === 0 && e <= 256, null)) },
  { weight: 1, arbitrary: fc.constantFrom(...BAD_RING_OPTIONS).map((b) => new NewRing(0, false, b)) },
)

const SIZES = [1, 100, 512, 4095, 4096, 4097, 8192, 65536]

const BAD_POOL_ARGS: { which: 'ring' | 'size' | 'count'; bad: Bad }[] = [
  { which: 'ring', bad: { value: {}, code: 'ERR_INVALID_ARG_TYPE', label: '{}' } },
  { which: 'ring', bad: { value: null, code: 'ERR_INVALID_ARG_TYPE', label: 'null' } },
  { which: 'size', bad: { value: 0, code: 'ERR_INVALID_ARG_VALUE', label: '0' } },
  { which: 'size', bad: { value: 2 ** 30 + 1, code: 'ERR_INVALID_ARG_VALUE', label: '2 ** 30 + 1' } },
  { which: 'count', bad: { value: 0, code: 'ERR_INVALID_ARG_VALUE', label: '0' } },
  { which: 'count', bad: { value: 16385, code: 'ERR_INVALID_ARG_VALUE', label: '16385' } },
  ...badNumbers(2 ** 32 - 1).map((bad) => ({ which: 'size' as const, bad })),
  ...badNumbers(2 ** 32 - 1).map((bad) => ({ which: 'count' as const, bad })),
]

export function addPool(w: World, r: RingM, size: number, count: number): void {
  if (w.pools.length >= MAX_POOLS) {
    w.log('  (pool limit reached: skipped)')
    return
  }
  const ring = r.real!
  const table = w.tableAlloc(r, count)
  let pool: InstanceType<typeof zcio.RegisteredBufferPool> | undefined
  let error: unknown
  try {
    pool = new zcio.RegisteredBufferPool(ring, size, count)
  } catch (e) {
    error = e
  }
  const code = (error as { code?: string } | undefined)?.code
  const what = `new RegisteredBufferPool(${r.name}, ${size}, ${count})`
  if (r.closed) {
    if (!error) fail(`${what} on a closed ring did not throw`)
    checkErrorShape(error, 'ERR_ZCIO_CLOSED', what)
    return
  }
  if (error) {
    if (code === 'ENOMEM' && w.session.memlockApplies) {
      w.log(`  ${what} -> ENOMEM (RLIMIT_MEMLOCK)`)
      cover('pool refused: ENOMEM')
      return
    }
    if (code === 'ERR_ZCIO_TABLE_FULL' && !(table.certain && table.fits)) {
      w.log(`  ${what} -> ERR_ZCIO_TABLE_FULL`)
      cover(`pool refused: ERR_ZCIO_TABLE_FULL (${table.certain ? 'predicted' : 'possible'})`)
      return
    }
    fail(`${what} threw ${code}: ${(error as Error).message}`)
  }
  if (table.certain && !table.fits) fail(`${what} succeeded although the ring's buffer table has no room for ${count} buffers`)
  if (r.table !== null) {
    if (table.base !== null) r.table.push({ start: table.base, len: count, maybeFreed: false })
    else r.table = null
  }
  const bufs: BufM[] = []
  for (let i = 0; i < count; i++) {
    bufs.push({ index: i, acquired: false, manual: false, ops: new Set(), data: new Uint8Array(size), known: new Uint8Array(size), view: null })
  }
  const p: PoolM = {
    id: w.id(), name: `pool${w.pools.length}`, ring: r, real: pool!, size, count, closed: false, bufs,
    free: Array.from({ length: count }, (_, i) => count - 1 - i), acquired: new Set(),
    acquires: 0, exhausted: 0, releases: 0, submitted: 0, observedCompleted: 0, observedFailed: 0,
    base: table.base,
  }
  w.pools.push(p)
  r.pools.push(p)
  w.log(`  ${p.name} = ${what}`)
}

class NewPool extends Cmd {
  constructor(readonly ring: number, readonly size: number, readonly count: number, readonly bad: (typeof BAD_POOL_ARGS)[number] | null) {
    super()
  }
  check(w: World) {
    return liveRings(w).length > 0
  }
  act(w: World) {
    const r = pickRing(w, this.ring)
    if (this.bad) {
      const args: unknown[] = [r.real, this.size, this.count]
      args[{ ring: 0, size: 1, count: 2 }[this.bad.which]] = this.bad.bad.value
      const res = thrownCode(() => new zcio.RegisteredBufferPool(...(args as [never, never, never])))
      const what = `new RegisteredBufferPool(${args.map((a, i) => (i === 0 && a === r.real ? r.name : show(a))).join(', ')})`
      if (!res.threw) fail(`${what} did not throw`)
      checkErrorShape(res.error, this.bad.bad.code, what)
      return
    }
    addPool(w, r, this.size, this.count)
  }
  toString() {
    if (this.bad) return `new RegisteredBufferPool(ring #${this.ring}, ${this.bad.which} = ${this.bad.bad.label})`
    return `new RegisteredBufferPool(ring #${this.ring}, ${this.size}, ${this.count})`
  }
}

const newPool = fc.oneof(
  { weight: 5, arbitrary: fc.record({ r: fc.nat(1023), s: fc.constantFrom(...SIZES), c: fc.integer({ min: 1, max: 8 }) }).map(({ r, s, c }) => new NewPool(r, s, c, null)) },
  { weight: 1, arbitrary: fc.record({ r: fc.nat(1023), b: fc.constantFrom(...BAD_POOL_ARGS) }).map(({ r, b }) => new NewPool(r, 4096, 2, b)) },
)

class NewBigPool extends Cmd {
  constructor(readonly ring: number, readonly size: number, readonly count: number) {
    super()
  }
  check(w: World) {
    return liveRings(w).length > 0 && w.bigPools < MAX_BIG_POOLS
  }
  act(w: World) {
    w.bigPools++
    addPool(w, pickRing(w, this.ring), this.size, this.count)
  }
  toString() {
    return `new RegisteredBufferPool(ring #${this.ring}, ${this.size}, ${this.count}) (big)`
  }
}

const newBigPool = fc
  .record({ r: fc.nat(1023), s: fc.constantFrom(1, 64), c: fc.constantFrom(4096, 8192, 12288, 16384) })
  .map(({ r, s, c }) => new NewBigPool(r, s, c))

// ---------------------------------------------------------------------------
// Buffers

function doAcquire(w: World, p: PoolM, tryMode: boolean): void {
  const pool = p.real!
  const what = `${p.name}.${tryMode ? 'tryAcquire' : 'acquire'}()`
  let got: ReturnType<typeof pool.acquire> | null = null
  let error: unknown
  let threw = false
  try {
    got = tryMode ? pool.tryAcquire() : pool.acquire()
  } catch (e) {
    threw = true
    error = e
  }
  if (isClosed(p)) {
    if (!threw) fail(`${what} on a closed pool did not throw`)
    checkErrorShape(error, 'ERR_ZCIO_CLOSED', what)
    return
  }
  if (p.free.length === 0) {
    p.exhausted++
    if (tryMode) {
      if (threw) fail(`${what} threw ${(error as { code?: string }).code} on an exhausted pool; expected null`)
      if (got !== null) fail(`${what} on an exhausted pool returned ${show(got)}`)
      return
    }
    if (!threw) fail(`${what} on an exhausted pool did not throw`)
    checkErrorShape(error, 'ERR_ZCIO_POOL_EXHAUSTED', what)
    return
  }
  if (threw) fail(`${what} threw ${(error as { code?: string }).code}: ${(error as Error).message}`)
  const want = p.free[p.free.length - 1]
  if (got === null) fail(`${what} returned null with ${p.free.length} buffers free`)
  if (got.index !== want) fail(`${what} gave buffer ${got.index}; the free list says ${want}`)
  const b = p.bufs[want]
  if (!(got.buffer instanceof Uint8Array) || got.buffer.length !== p.size || got.buffer.byteOffset !== 0) {
    fail(`${what}: the view is not a ${p.size}-byte Uint8Array at offset 0`)
  }
  if (b.view && b.view !== got.buffer) fail(`${what}: buffer ${want} came back with a different view`)
  b.view = got.buffer
  p.free.pop()
  b.acquired = true
  p.acquired.add(want)
  p.acquires++
  w.log(`  ${what} -> ${want}`)
}

class Acquire extends Cmd {
  constructor(readonly pool: number, readonly tryMode: boolean) {
    super()
  }
  check(w: World) {
    return livePools(w).length > 0
  }
  act(w: World) {
    doAcquire(w, pickPool(w, this.pool), this.tryMode)
  }
  toString() {
    return `pool #${this.pool}.${this.tryMode ? 'tryAcquire' : 'acquire'}()`
  }
}

const acquire = fc.record({ p: fc.nat(1023), t: fc.boolean() }).map(({ p, t }) => new Acquire(p, t))

type IndexMethod = 'release' | 'get' | 'markInFlight' | 'completeInFlight'

class IndexCall extends Cmd {
  constructor(readonly pool: number, readonly method: IndexMethod, readonly buf: BufSel) {
    super()
  }
  check(w: World) {
    return livePools(w).length > 0
  }
  act(w: World) {
    const p = pickPool(w, this.pool)
    const i = resolveBuf(p, this.buf)
    const pool = p.real!
    const what = `${p.name}.${this.method}(${i})`
    w.log(`  ${what}`)
    const res = thrownCode(() => (pool[this.method] as (i: number) => unknown).call(pool, i))
    const b: BufM | undefined = p.bufs[i]
    let want: string | undefined | 'either'
    if (isClosed(p)) want = 'ERR_ZCIO_CLOSED'
    else if (!b) want = 'ERR_OUT_OF_RANGE'
    else if (!b.acquired) want = 'ERR_ZCIO_NOT_ACQUIRED'
    else {
      const k = w.bufKernelOps(b)
      switch (this.method) {
        case 'get':
          want = undefined
          break
        case 'release':
          want = b.manual || k === 'yes' ? 'ERR_ZCIO_BUFFER_IN_FLIGHT' : k === 'maybe' ? 'either' : undefined
          break
        case 'markInFlight':
          want = b.manual ? 'ERR_ZCIO_BUFFER_IN_FLIGHT' : undefined
          break
        case 'completeInFlight':
          want = !b.manual ? 'ERR_ZCIO_NOT_IN_FLIGHT' : k === 'yes' ? 'ERR_ZCIO_BUFFER_IN_FLIGHT' : k === 'maybe' ? 'either' : undefined
          break
      }
    }
    if (want === 'either') {
      cover(`${this.method} with ops maybe still in the kernel: ${res.threw ? 'refused' : 'done'}`)
      if (res.threw) {
        checkErrorShape(res.error, 'ERR_ZCIO_BUFFER_IN_FLIGHT', what)
        w.log('  -> ERR_ZCIO_BUFFER_IN_FLIGHT (an op is still in the kernel)')
        return
      }
      w.markReaped(b!)
      w.log('  -> ok (every op on it was reaped)')
      want = undefined
    } else if (want !== undefined) {
      if (!res.threw) fail(`${what} did not throw; expected ${want}`)
      checkErrorShape(res.error, want, what)
      return
    } else if (res.threw) {
      fail(`${what} threw ${res.code}: ${(res.error as Error).message}`)
    }
    switch (this.method) {
      case 'release':
        b!.acquired = false
        p.acquired.delete(i)
        p.free.push(i)
        p.releases++
        break
      case 'markInFlight':
        b!.manual = true
        break
      case 'completeInFlight':
        b!.manual = false
        w.markReaped(b!)
        break
      case 'get':
        break
    }
  }
  toString() {
    return `pool #${this.pool}.${this.method}(${this.buf.any ? 'index' : 'acquired'} #${this.buf.v})`
  }
}

const indexCall = fc
  .record({ p: fc.nat(1023), m: fc.constantFrom<IndexMethod>('release', 'release', 'get', 'markInFlight', 'completeInFlight'), b: bufSel })
  .map(({ p, m, b }) => new IndexCall(p, m, b))

class Fill extends Cmd {
  constructor(readonly pool: number, readonly buf: number, readonly at: number, readonly len: number, readonly seed: number) {
    super()
  }
  check(w: World) {
    return livePools(w).length > 0
  }
  act(w: World) {
    const p = pickPool(w, this.pool)
    if (isClosed(p) || p.acquired.size === 0) return
    const i = resolveBuf(p, { any: false, v: this.buf })
    const b = p.bufs[i]
    const off = this.at % p.size
    const len = 1 + (this.len % (p.size - off))
    const bytes = new Uint8Array(len)
    for (let k = 0; k < len; k++) bytes[k] = (this.seed + k * 29 + (k >> 7)) & 0xff
    // JS writes the view while the kernel may use the buffer: the API allows
    // it (the bytes are then unknown), so the model only records the race.
    for (const o of b.ops) {
      if (o.status === 'done') continue
      const s = Math.max(off, o.boff)
      const e = Math.min(off + len, o.boff + o.len)
      if (s >= e) continue
      if (o.kind === 'read') o.bufConflict!.fill(1, s - o.boff, e - o.boff)
      else o.srcKnown!.fill(0, s - o.boff, e - o.boff)
    }
    b.view!.set(bytes, off)
    b.data.set(bytes, off)
    b.known.fill(1, off, off + len)
    w.log(`  ${p.name}[${i}].fill(${off}, ${len} bytes)`)
  }
  toString() {
    return `fill(pool #${this.pool}, acquired #${this.buf}, at ${this.at}, len ${this.len}, seed ${this.seed})`
  }
}

const fill = fc.record({ p: fc.nat(1023), b: fc.nat(1023), a: fc.nat(1 << 16), l: fc.nat(1 << 16), s: fc.nat(255) }).map(({ p, b, a, l, s }) => new Fill(p, b, a, l, s))

// ---------------------------------------------------------------------------
// I/O

type TargetSel = 'file0' | 'file1' | 'pipe0' | 'pipe1' | 'zero' | 'null' | 'dir' | 'closed' | 'unused' | 'huge'
interface PosSel {
  mode: 'zero' | 'abs' | 'far' | 'size' | 'huge'
  v: number
}
interface LenSel {
  mode: 'full' | 'small' | 'any' | 'zero' | 'over'
  v: number
}
interface IoSpec {
  buf: BufSel
  target: TargetSel
  pos: PosSel
  len: LenSel
  boff: { mode: 'zero' | 'any' | 'end'; v: number }
  write: boolean
}

const targetSel = fc.constantFrom<TargetSel>(
  'file0', 'file0', 'file0', 'file1', 'file1', 'pipe0', 'pipe0', 'pipe1', 'zero', 'null', 'dir', 'closed', 'unused', 'huge',
)
const posSel = fc.record({ mode: fc.constantFrom<PosSel['mode']>('zero', 'abs', 'abs', 'abs', 'far', 'size', 'size', 'huge'), v: fc.nat(1 << 20) })
const lenSel = fc.record({ mode: fc.constantFrom<LenSel['mode']>('full', 'small', 'small', 'any', 'any', 'zero', 'over'), v: fc.nat(1 << 20) })
const ioSpec = fc.record({
  buf: bufSel,
  target: targetSel,
  pos: posSel,
  len: lenSel,
  boff: fc.record({ mode: fc.constantFrom<IoSpec['boff']['mode']>('zero', 'zero', 'any', 'any', 'end'), v: fc.nat(1 << 20) }),
  write: fc.boolean(),
})

interface Resolved {
  index: number
  target: Target
  fd: number
  pos: number
  len: number
  boff: number
}

function resolveTarget(w: World, r: RingM, sel: TargetSel, v: number): Target {
  switch (sel) {
    case 'file0':
      return w.files[0]
    case 'file1':
      return w.files[1]
    case 'pipe0':
      return w.pipes[0]
    case 'pipe1':
      return w.pipes[1]
    case 'zero':
      return w.zero
    case 'null':
      return w.null
    case 'dir':
      return w.dir
    case 'closed':
      // Closed just now and submitted at once, so no other open can take the
      // number in between (an SQPOLL ring submits later: use another bad fd).
      if (!r.sqpoll) return { kind: 'bad', name: 'a closed fd', fd: w.closedFd() }
      return { kind: 'bad', name: 'an unused fd', fd: w.unusedFd(v) }
    case 'unused':
      return { kind: 'bad', name: 'an unused fd', fd: w.unusedFd(v) }
    case 'huge':
      return { kind: 'bad', name: 'fd 2 ** 31 - 1', fd: 2 ** 31 - 1 }
  }
}

function resolveIo(w: World, p: PoolM, s: IoSpec, boffAllowed: boolean): Resolved {
  const index = resolveBuf(p, s.buf)
  const target = resolveTarget(w, p.ring, s.target, s.buf.v)
  // 'end': at the very end of the buffer, where only 0 bytes fit.
  const boff = !boffAllowed ? 0 : s.boff.mode === 'any' ? s.boff.v % p.size : s.boff.mode === 'end' ? p.size : 0
  const room = p.size - boff
  let len: number
  switch (s.len.mode) {
    case 'full':
      len = room
      break
    case 'small':
      len = room === 0 ? 0 : 1 + (s.len.v % Math.min(64, room))
      break
    case 'any':
      len = s.len.v % (room + 1)
      break
    case 'zero':
      len = 0
      break
    case 'over':
      len = room + 1 + (s.len.v % 4)
      break
  }
  if (target.kind === 'pipe' && s.len.mode !== 'over') len = Math.min(len, PIPE_IO_MAX)
  let pos: number
  switch (s.pos.mode) {
    case 'zero':
      pos = 0
      break
    case 'abs': {
      // Mostly inside the file, or just past its end.
      const size = target.kind === 'file' ? target.size : 0
      pos = s.pos.v % Math.min(FILE_SPAN, Math.max(size, 4096) + 4096)
      break
    }
    case 'far':
      pos = s.pos.v % FILE_SPAN
      break
    case 'size': {
      const size = target.kind === 'file' ? target.size : 0
      pos = Math.min(FILE_SPAN, Math.max(0, size + (s.pos.v % 512) - 256))
      break
    }
    case 'huge':
      pos = s.write ? s.pos.v % FILE_SPAN : Number.MAX_SAFE_INTEGER
      break
  }
  return { index, target, fd: target.fd, pos, len, boff }
}

/** The state error a single op with these arguments must get, if any. */
function opError(p: PoolM, index: number, len: number, boff: number): string | null {
  if (isClosed(p)) return 'ERR_ZCIO_CLOSED'
  const b = p.bufs[index]
  if (!b) return 'ERR_OUT_OF_RANGE'
  if (!b.acquired) return 'ERR_ZCIO_NOT_ACQUIRED'
  if (boff + len > p.size) return 'ERR_OUT_OF_RANGE'
  return null
}

/** Whether the model can take one more op of this kind now (keeps the CQ from overflowing, pipes from filling). */
function roomFor(w: World, p: PoolM, ops: { target: Target; len: number; write: boolean }[]): boolean {
  if (w.ringLoad(p.ring) + ops.length > RING_OP_CAP) return false
  for (const pipe of w.pipes) {
    const mine = ops.filter((o) => o.target === pipe)
    if (mine.length === 0) continue
    const reads = mine.filter((o) => !o.write).length
    const pendingReads = [...pipe.ops].filter((o) => o.kind === 'read' && o.status !== 'done').length
    if (pendingReads + reads > PIPE_READS_PENDING_MAX) return false
    const bytes = mine.filter((o) => o.write).reduce((a, o) => a + o.len, 0)
    if (pipe.held + bytes > 32 * 1024) return false
  }
  return true
}

function kernelErrorShape(e: unknown, op: Op): number {
  if (!(e instanceof Error)) fail(`${op.label} rejected with a non-Error ${show(e)}`)
  const err = e as NodeJS.ErrnoException
  if (typeof err.errno !== 'number' || err.errno >= 0) fail(`${op.label} rejected with ${err.code} and errno ${show(err.errno)}: ${err.message}`)
  let name: string
  try {
    name = getSystemErrorName(err.errno)
  } catch {
    name = '?'
  }
  if (err.code !== name) fail(`${op.label} rejected with code ${err.code} but errno ${err.errno} (${name})`)
  if (err.syscall !== op.kind) fail(`${op.label} rejected with syscall ${show(err.syscall)}`)
  return err.errno
}

/** What the reaction to an op's promise does, inside the driver's settle round. */
type Chain = { kind: 'none' } | { kind: 'again'; times: number } | { kind: 'release' } | { kind: 'close' } | { kind: 'closePool' }

interface IssueOptions {
  /** One of many ops queued in one turn: the CQ may overflow (see Flood). */
  flood?: boolean
  chain?: Chain
}

const methodName = (api: 'promise' | 'manual', write: boolean) =>
  api === 'promise' ? (write ? 'writeFixed' : 'readFixed') : write ? 'submitWriteFixed' : 'submitReadFixed'

/** Calls readFixed/writeFixed/submit*Fixed and records what the model expects. */
function issueIo(w: World, p: PoolM, x: Resolved, write: boolean, api: 'promise' | 'manual', o: IssueOptions = {}): Op | null {
  const pool = p.real
  if (!pool) return null
  const kind = write ? 'write' : 'read'
  const method = methodName(api, write)
  const what = `${p.name}.${method}(${x.target.name} = fd ${x.fd}, ${x.index}, ${x.pos}, ${x.len}${x.boff ? `, ${x.boff}` : ''})`
  const error = opError(p, x.index, x.len, x.boff)
  if (error === null && !o.flood && !roomFor(w, p, [{ target: x.target, len: x.len, write }])) {
    w.log(`  (no room for ${what}: skipped)`)
    return null
  }
  if (!o.flood) w.log(`  ${what}`)
  const submittedBefore = o.flood ? pool.stats().submitted : 0
  let value: unknown
  let thrown: unknown
  let threw = false
  try {
    value = (pool[method] as (...a: number[]) => unknown).call(pool, x.fd, x.index, x.pos, x.len, x.boff)
  } catch (e) {
    threw = true
    thrown = e
  }
  if (api === 'promise') {
    if (threw) fail(`${what} threw synchronously (${(thrown as { code?: string }).code}); promise methods must reject`)
    if (!(value instanceof Promise)) fail(`${what} returned ${show(value)}, not a promise`)
    const promise = value as Promise<number>
    // A push the kernel kept refusing (EBUSY while its CQ overflows) fails
    // with nothing queued; only a flood can get there.
    const refused = o.flood && error === null && pool.stats().submitted === submittedBefore
    if (error !== null || refused) {
      w.track(promise, what)
      promise.then(
        () => w.asyncFail(new ModelError(`${what} resolved; expected a rejection with ${error ?? 'EBUSY/EAGAIN'}`)),
        (e) => {
          try {
            if (error !== null) checkErrorShape(e, error, what)
            else {
              const code = (e as { code?: string }).code
              if (code !== 'EBUSY' && code !== 'EAGAIN') fail(`${what} queued nothing and rejected with ${code}`)
              cover('flood push refused (EBUSY/EAGAIN)')
            }
          } catch (err) {
            w.asyncFail(err)
          }
        },
      )
      return null
    }
    const op = w.newOp('promise', kind, p, p.bufs[x.index], x.target, x.pos, x.len, x.boff, o.flood)
    if (!o.flood) w.log(`    = ${op.label}`)
    w.track(promise, op.label)
    const after = () => {
      if (!o.chain || o.chain.kind === 'none') return
      w.reacting++
      try {
        react(w, op, x, write, o.chain)
      } finally {
        w.reacting--
      }
    }
    promise.then(
      (n) => {
        try {
          w.finishOp(op, n, 'resolved')
          after()
        } catch (err) {
          w.asyncFail(err)
        }
      },
      (e) => {
        try {
          w.finishOp(op, kernelErrorShape(e, op), 'rejected')
          after()
        } catch (err) {
          w.asyncFail(err)
        }
      },
    )
    return op
  }
  // Low level: throws on errors, returns userData.
  if (error !== null) {
    if (!threw) fail(`${what} did not throw; expected ${error}`)
    checkErrorShape(thrown, error, what)
    return null
  }
  if (threw) fail(`${what} threw ${(thrown as { code?: string }).code}: ${(thrown as Error).message}`)
  if (typeof value !== 'bigint') fail(`${what} returned ${show(value)}, not a bigint`)
  const r = p.ring
  if (r.manual.has(value)) fail(`${what} returned userData ${value}, which a pending submission already has`)
  const op = w.newOp('manual', kind, p, p.bufs[x.index], x.target, x.pos, x.len, x.boff)
  op.userData = value
  op.observable = r.real !== null
  if (!op.observable) w.loseOp(op)
  r.manual.set(value, op)
  p.bufs[x.index].manual = true
  w.log(`    = ${op.label} userData ${value}`)
  return op
}

/**
 * Runs inside the reaction to `op`'s promise, that is inside the driver's
 * settle round: queue the same op again (a new op must never get the slot of
 * one not yet settled), release the buffer (it must be back to acquired once
 * its last op completed), or close the ring (re-entrant close).
 */
function react(w: World, op: Op, x: Resolved, write: boolean, chain: Chain): void {
  cover(`reaction: ${chain.kind}`)
  const p = op.pool
  switch (chain.kind) {
    case 'again':
      if (chain.times > 0) {
        w.log(`  (in the reaction to op${op.id}) again`)
        issueIo(w, p, x, write, 'promise', { chain: { kind: 'again', times: chain.times - 1 } })
      }
      return
    case 'release': {
      const b = op.buf
      if (!p.real || isClosed(p) || !b.acquired || b.manual || b.ops.size > 0) return
      w.log(`  (in the reaction to op${op.id}) ${p.name}.release(${b.index})`)
      const res = thrownCode(() => p.real!.release(b.index))
      if (res.threw) fail(`${p.name}.release(${b.index}) in the reaction to ${op.label} threw ${res.code}: the buffer is still in flight after its last op settled`)
      b.acquired = false
      p.acquired.delete(b.index)
      p.free.push(b.index)
      p.releases++
      return
    }
    case 'closePool': {
      // Closing the pool from its own op's reaction: allowed once nothing is in flight.
      if (!p.real || isClosed(p)) return
      let busy: 'yes' | 'no' | 'maybe' = 'no'
      for (const b of p.bufs) {
        const s = w.bufInFlight(b)
        if (s === 'yes' || (s === 'maybe' && busy === 'no')) busy = s
      }
      w.log(`  (in the reaction to op${op.id}) ${p.name}.close()`)
      const res = thrownCode(() => p.real!.close())
      if (busy === 'yes' || (busy === 'maybe' && res.threw)) {
        if (!res.threw) fail(`${p.name}.close() in the reaction to ${op.label} succeeded with buffers in flight`)
        checkErrorShape(res.error, 'ERR_ZCIO_BUFFER_IN_FLIGHT', `${p.name}.close()`)
        return
      }
      if (res.threw) fail(`${p.name}.close() in the reaction to ${op.label} threw ${res.code}: ${(res.error as Error).message}`)
      for (const b of p.bufs) w.markReaped(b)
      p.closed = true
      if (p.ring.table && p.base !== null) p.ring.table = p.ring.table.filter((g) => g.start !== p.base)
      return
    }
    case 'close':
      if (op.ring.real && !op.ring.closed) {
        w.log(`  (in the reaction to op${op.id}) ${op.ring.name}.close()`)
        w.closeRing(op.ring)
      }
      return
    case 'none':
      return
  }
}

class Io extends Cmd {
  constructor(readonly pool: number, readonly api: 'promise' | 'manual', readonly spec: IoSpec, readonly chain: Chain) {
    super()
  }
  check(w: World) {
    return livePools(w).length > 0
  }
  act(w: World) {
    const p = pickPool(w, this.pool)
    ensureAcquired(w, p, this.spec.buf)
    const x = resolveIo(w, p, this.spec, true)
    issueIo(w, p, x, this.spec.write, this.api, { chain: this.api === 'promise' ? this.chain : undefined })
  }
  toString() {
    const s = this.spec
    const chain = this.api === 'promise' && this.chain.kind !== 'none' ? `, then in its reaction: ${this.chain.kind}${this.chain.kind === 'again' ? ` x${this.chain.times}` : ''}` : ''
    return `${methodName(this.api, s.write)}(pool #${this.pool}, ${s.target}, buf ${s.buf.any ? 'index' : 'acquired'} #${s.buf.v}, pos ${s.pos.mode} ${s.pos.v}, len ${s.len.mode} ${s.len.v}, boff ${s.boff.mode === 'any' ? s.boff.v : s.boff.mode}${chain})`
  }
}

const chainArb: fc.Arbitrary<Chain> = fc.oneof(
  { weight: 12, arbitrary: fc.constant<Chain>({ kind: 'none' }) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 4 }).map((times): Chain => ({ kind: 'again', times })) },
  { weight: 2, arbitrary: fc.constant<Chain>({ kind: 'release' }) },
  { weight: 1, arbitrary: fc.constant<Chain>({ kind: 'close' }) },
  { weight: 1, arbitrary: fc.constant<Chain>({ kind: 'closePool' }) },
)

/**
 * Many ops queued in one turn on one buffer: more than the completion queue
 * holds (EBUSY: completions move to the backlog, pushes may be refused) and
 * more than one settle call delivers (1024).
 */
class Flood extends Cmd {
  constructor(readonly pool: number, readonly n: number, readonly target: 'zero' | 'null' | 'file0' | 'unused', readonly write: boolean) {
    super()
  }
  check(w: World) {
    return livePools(w).length > 0
  }
  act(w: World) {
    const p = pickPool(w, this.pool)
    if (isClosed(p) || !p.real) return
    ensureAcquired(w, p, { any: false, v: 0 })
    if (p.acquired.size === 0) return
    const index = Math.min(...p.acquired)
    const write = this.write && this.target !== 'file0'
    const target = resolveTarget(w, p.ring, this.target, 0)
    const len = Math.min(64, p.size)
    const x: Resolved = { index, target, fd: target.fd, pos: 0, len, boff: 0 }
    // Completions may now be taken aside before the model hears of them.
    for (const o of p.ring.ops) if (o.status === 'pending') o.maybe = true
    w.floodConflicts(p.bufs[index], 0, len)
    w.log(`  ${this.n} x ${p.name}.${write ? 'writeFixed' : 'readFixed'}(${target.name}, ${index}, 0, ${len}) in one turn`)
    let queued = 0
    const completedBefore = p.real.stats().completed
    for (let k = 0; k < this.n; k++) if (issueIo(w, p, x, write, 'promise', { flood: true })) queued++
    cover(`flood of ${this.n}`)
    // Completions reaped while pushing: the kernel answered EBUSY (its CQ
    // overflowed) and the ring moved them to its backlog.
    if (p.real.stats().completed > completedBefore) cover('flood: completions moved to the backlog while pushing')
    w.log(`    ${queued} queued`)
  }
  toString() {
    return `flood(pool #${this.pool}, ${this.n} x ${this.write ? 'write' : 'read'} ${this.target})`
  }
}

const flood = fc
  .record({ p: fc.nat(1023), n: fc.constantFrom(100, 300, 1100, 2500), t: fc.constantFrom<Flood['target']>('zero', 'zero', 'null', 'file0', 'unused'), w: fc.boolean() })
  .map(({ p, n, t, w }) => new Flood(p, n, t, w))

class Inspect extends Cmd {
  constructor(readonly pool: number) {
    super()
  }
  check(w: World) {
    return livePools(w).length > 0
  }
  act(w: World) {
    const p = pickPool(w, this.pool)
    const text = inspect(p.real)
    const closed = isClosed(p)
    if (!text.startsWith('RegisteredBufferPool') || !text.includes(`closed: ${closed}`) || !text.includes(`totalCount: ${p.count}`)) {
      fail(`util.inspect(${p.name}) is ${text}`)
    }
    const r = p.ring.real
    if (r) {
      const rt = inspect(r)
      if (!rt.startsWith('Ring') || !rt.includes(`closed: ${p.ring.closed}`)) fail(`util.inspect(${p.ring.name}) is ${rt}`)
    }
  }
  toString() {
    return `inspect(pool #${this.pool})`
  }
}

const io = fc.oneof(
  { weight: 4, arbitrary: fc.record({ p: fc.nat(1023), s: ioSpec, c: chainArb }).map(({ p, s, c }) => new Io(p, 'promise', s, c)) },
  { weight: 1, arbitrary: fc.record({ p: fc.nat(1023), s: ioSpec }).map(({ p, s }) => new Io(p, 'manual', s, { kind: 'none' })) },
)

interface BatchElem {
  buf: BufSel
  pos: PosSel
  len: LenSel
}

type BatchFault = 'none' | 'tooMany' | 'indicesType' | 'positionsType' | 'lengthsType' | 'fd' | 'mismatch' | 'empty' | 'position'

class Batch extends Cmd {
  constructor(
    readonly pool: number,
    readonly write: boolean,
    readonly target: TargetSel,
    readonly elems: BatchElem[],
    readonly fault: BatchFault,
    readonly badFd: Bad,
  ) {
    super()
  }
  check(w: World) {
    return livePools(w).length > 0
  }
  act(w: World) {
    const p = pickPool(w, this.pool)
    const pool = p.real!
    const kind = this.write ? 'write' : 'read'
    ensureAcquired(w, p, this.elems[0].buf)
    const xs = this.elems.map((e) =>
      resolveIo(w, p, { buf: e.buf, target: this.target, pos: e.pos, len: e.len, boff: { mode: 'zero', v: 0 }, write: this.write }, false),
    )
    const target = xs[0].target
    let fd: unknown = target.fd
    let indices: unknown = Uint32Array.from(xs.map((x) => x.index))
    let positions: unknown = Float64Array.from(xs.map((x) => x.pos))
    let lengths: unknown = Uint32Array.from(xs.map((x) => x.len))
    // The error the batch must reject with, in the order the checks run.
    let error: string | null = null
    switch (this.fault) {
      case 'indicesType':
        indices = Array.from(indices as Uint32Array)
        error = 'ERR_INVALID_ARG_TYPE'
        break
      case 'positionsType':
        positions = Float32Array.from(positions as Float64Array)
        error = 'ERR_INVALID_ARG_TYPE'
        break
      case 'lengthsType':
        lengths = Uint8Array.from(lengths as Uint32Array)
        error = 'ERR_INVALID_ARG_TYPE'
        break
      case 'fd':
        fd = this.badFd.value
        error = this.badFd.code
        break
      case 'mismatch':
        lengths = Uint32Array.from([...(lengths as Uint32Array), 1])
        error = 'ERR_INVALID_ARG_VALUE'
        break
      case 'empty':
        indices = new Uint32Array(0)
        positions = new Float64Array(0)
        lengths = new Uint32Array(0)
        error = 'ERR_INVALID_ARG_VALUE'
        break
      case 'tooMany':
        // At most 16384 elements per call.
        indices = new Uint32Array(16385).fill(xs[0].index)
        positions = new Float64Array(16385)
        lengths = new Uint32Array(16385).fill(1)
        error = 'ERR_OUT_OF_RANGE'
        break
      case 'position':
        ;(positions as Float64Array)[0] = [0.5, -1, Number.NaN, 2 ** 53][this.elems[0].pos.v % 4]
        error = 'ERR_OUT_OF_RANGE'
        break
      case 'none':
        for (const x of xs) {
          error = opError(p, x.index, x.len, 0)
          if (error) break
        }
        break
    }
    const method = this.write ? 'writeFixedBatch' : 'readFixedBatch'
    const what = `${p.name}.${method}(${target.name} = ${show(fd)}, ${show(indices)}, ${show(positions)}, ${show(lengths)})`
    if (error === null && !roomFor(w, p, xs.map((x) => ({ target: x.target, len: x.len, write: this.write })))) {
      w.log(`  (no room for ${what}: skipped)`)
      return
    }
    w.log(`  ${what}`)
    let promise: Promise<Int32Array>
    try {
      promise = (pool[method] as (...a: unknown[]) => Promise<Int32Array>).call(pool, fd, indices, positions, lengths)
    } catch (e) {
      fail(`${what} threw synchronously (${(e as { code?: string }).code}); promise methods must reject`)
    }
    if (!(promise instanceof Promise)) fail(`${what} returned ${show(promise)}, not a promise`)
    if (error !== null) {
      const code = error
      w.track(promise, what)
      promise.then(
        () => w.asyncFail(new ModelError(`${what} resolved; expected a rejection with ${code}`)),
        (e) => {
          try {
            checkErrorShape(e, code, what)
          } catch (err) {
            w.asyncFail(err)
          }
        },
      )
      return
    }
    const ops = xs.map((x) => w.newOp('batch', kind, p, p.bufs[x.index], x.target, x.pos, x.len, 0))
    for (const op of ops) w.batchOf.set(op, ops)
    w.log(`    = [${ops.map((o) => `op${o.id}`).join(', ')}]`)
    w.track(promise, `${what} (${ops.map((o) => `op${o.id}`).join(', ')})`)
    promise.then(
      (res) => {
        try {
          if (!(res instanceof Int32Array) || res.length !== ops.length) fail(`${what} resolved with ${show(res)}`)
          ops.forEach((op, k) => w.finishOp(op, res[k], 'batch'))
        } catch (err) {
          w.asyncFail(err)
        }
      },
      (e) => w.asyncFail(new ModelError(`${what} rejected with ${(e as { code?: string }).code}: ${(e as Error).message}`)),
    )
  }
  toString() {
    const e = this.elems.map((x) => `{buf ${x.buf.any ? 'index' : 'acquired'} #${x.buf.v}, pos ${x.pos.mode} ${x.pos.v}, len ${x.len.mode} ${x.len.v}}`)
    return `${this.write ? 'writeFixedBatch' : 'readFixedBatch'}(pool #${this.pool}, ${this.target}, [${e.join(', ')}]${this.fault !== 'none' ? `, fault ${this.fault}${this.fault === 'fd' ? ` ${this.badFd.label}` : ''}` : ''})`
  }
}

const batchElem = fc.record({ buf: bufSel, pos: posSel, len: lenSel })
const batch = fc
  .record({
    p: fc.nat(1023),
    w: fc.boolean(),
    t: targetSel,
    e: fc.array(batchElem, { minLength: 1, maxLength: 6 }),
    f: fc.oneof(
      { weight: 12, arbitrary: fc.constant<BatchFault>('none') },
      { weight: 1, arbitrary: fc.constantFrom<BatchFault>('tooMany', 'indicesType', 'positionsType', 'lengthsType', 'fd', 'mismatch', 'empty', 'position') },
    ),
    bad: fc.constantFrom(...badNumbers(2 ** 31 - 1)),
  })
  .map(({ p, w, t, e, f, bad }) => new Batch(p, w, t, e, f, bad))

// ---------------------------------------------------------------------------
// Argument errors of single-op methods

type OpMethod = 'readFixed' | 'writeFixed' | 'submitReadFixed' | 'submitWriteFixed'
const ARG_MAX = { fd: 2 ** 31 - 1, index: 2 ** 32 - 1, position: Number.MAX_SAFE_INTEGER, length: 2 ** 32 - 1, bufferOffset: 2 ** 32 - 1 }
type ArgName = keyof typeof ARG_MAX

class BadArgs extends Cmd {
  constructor(readonly pool: number, readonly method: OpMethod | IndexMethod, readonly arg: ArgName, readonly bad: number) {
    super()
  }
  check(w: World) {
    return livePools(w).length > 0
  }
  act(w: World) {
    const p = pickPool(w, this.pool)
    const pool = p.real!
    const indexOnly = ['release', 'get', 'markInFlight', 'completeInFlight'].includes(this.method)
    const arg: ArgName = indexOnly ? 'index' : this.arg
    const bads = badNumbers(ARG_MAX[arg]).filter((b) => !(arg === 'bufferOffset' && b.value === undefined))
    const bad = pickOf(bads, this.bad)
    const acquired = [...p.acquired]
    const args: unknown[] = indexOnly ? [0] : [w.files[0].fd, acquired[0] ?? 0, 0, 1, undefined]
    args[indexOnly ? 0 : ['fd', 'index', 'position', 'length', 'bufferOffset'].indexOf(arg)] = bad.value
    const what = `${p.name}.${this.method}(${args.map(show).join(', ')})`
    w.log(`  ${what}`)
    if (this.method === 'readFixed' || this.method === 'writeFixed') {
      let promise: unknown
      try {
        promise = (pool[this.method] as (...a: unknown[]) => unknown).apply(pool, args)
      } catch (e) {
        fail(`${what} threw synchronously (${(e as { code?: string }).code}); promise methods must reject`)
      }
      if (!(promise instanceof Promise)) fail(`${what} returned ${show(promise)}, not a promise`)
      w.track(promise, what)
      promise.then(
        () => w.asyncFail(new ModelError(`${what} resolved; expected a rejection with ${bad.code}`)),
        (e) => {
          try {
            checkErrorShape(e, bad.code, what)
          } catch (err) {
            w.asyncFail(err)
          }
        },
      )
    } else {
      const res = thrownCode(() => (pool[this.method] as (...a: unknown[]) => unknown).apply(pool, args))
      if (!res.threw) fail(`${what} did not throw; expected ${bad.code}`)
      checkErrorShape(res.error, bad.code, what)
    }
  }
  toString() {
    return `badArgs(pool #${this.pool}, ${this.method}, ${this.arg}, bad #${this.bad})`
  }
}

const badArgs = fc
  .record({
    p: fc.nat(1023),
    m: fc.constantFrom<OpMethod | IndexMethod>('readFixed', 'writeFixed', 'submitReadFixed', 'submitWriteFixed', 'release', 'get', 'markInFlight', 'completeInFlight'),
    a: fc.constantFrom<ArgName>('fd', 'index', 'position', 'length', 'bufferOffset'),
    b: fc.nat(63),
  })
  .map(({ p, m, a, b }) => new BadArgs(p, m, a, b))

// ---------------------------------------------------------------------------
// Completions of low-level submissions, submit

class Take extends Cmd {
  constructor(readonly ring: number) {
    super()
  }
  check(w: World) {
    return liveRings(w).length > 0
  }
  act(w: World) {
    const r = pickRing(w, this.ring)
    let list: unknown
    try {
      list = r.real!.takeCompletions()
    } catch (e) {
      fail(`${r.name}.takeCompletions() threw ${(e as { code?: string }).code}`)
    }
    // A waiting completions() takes every completion as soon as it is reaped.
    const waiting = r.waiters.find((x) => !x.settled)
    if (waiting && Array.isArray(list) && list.length > 0) {
      fail(`${r.name}.takeCompletions() got ${list.length} completions while completions() #${waiting.id} was waiting for them`)
    }
    w.takeManual(r, list, `${r.name}.takeCompletions()`)
  }
  toString() {
    return `ring #${this.ring}.takeCompletions()`
  }
}

class Completions extends Cmd {
  constructor(readonly ring: number, readonly calls: number) {
    super()
  }
  check(w: World) {
    return liveRings(w).length > 0
  }
  act(w: World) {
    const r = pickRing(w, this.ring)
    for (let k = 0; k < this.calls; k++) this.one(w, r)
  }
  private one(w: World, r: RingM) {
    const waiter: WaiterM = { id: w.id(), ring: r, settled: false }
    cover(r.waiters.some((x) => !x.settled) ? 'completions() while another waits' : 'completions()')
    r.waiters.push(waiter)
    const what = `${r.name}.completions() #${waiter.id}`
    let promise: Promise<Completion[]>
    try {
      promise = r.real!.completions()
    } catch (e) {
      fail(`${what} threw synchronously (${(e as { code?: string }).code})`)
    }
    if (!(promise instanceof Promise)) fail(`${what} returned ${show(promise)}`)
    w.log(`  ${what}`)
    w.track(promise, what)
    promise.then(
      (list) => {
        // Waiters resolve in the order they were made.
        const older = r.waiters.find((x) => x.id < waiter.id && !x.settled)
        waiter.settled = true
        try {
          if (older) fail(`${what} resolved before the older completions() #${older.id}`)
          w.takeManual(r, list, what)
        } catch (err) {
          w.asyncFail(err)
        }
      },
      (e) => {
        waiter.settled = true
        w.asyncFail(new ModelError(`${what} rejected with ${(e as { code?: string }).code}`))
      },
    )
  }
  toString() {
    return `ring #${this.ring}.completions()${this.calls > 1 ? ` x${this.calls}` : ''}`
  }
}
type Completion = import('./world.js').Completion

class RingSubmit extends Cmd {
  constructor(readonly ring: number) {
    super()
  }
  check(w: World) {
    return liveRings(w).length > 0
  }
  act(w: World) {
    const r = pickRing(w, this.ring)
    const res = thrownCode(() => r.real!.submit())
    if (r.closed) {
      if (!res.threw) fail(`${r.name}.submit() on a closed ring did not throw`)
      checkErrorShape(res.error, 'ERR_ZCIO_CLOSED', `${r.name}.submit()`)
      return
    }
    if (res.threw) fail(`${r.name}.submit() threw ${res.code}: ${(res.error as Error).message}`)
    const n = r.real!.submit()
    if (!Number.isInteger(n) || n < 0) fail(`${r.name}.submit() returned ${show(n)}`)
  }
  toString() {
    return `ring #${this.ring}.submit()`
  }
}

const ringCall = fc.oneof(
  { weight: 2, arbitrary: fc.nat(1023).map((r) => new Take(r)) },
  { weight: 1, arbitrary: fc.record({ r: fc.nat(1023), k: fc.integer({ min: 1, max: 3 }) }).map(({ r, k }) => new Completions(r, k)) },
  { weight: 1, arbitrary: fc.nat(1023).map((r) => new RingSubmit(r)) },
)

// ---------------------------------------------------------------------------
// Pipes

class PipeWrite extends Cmd {
  constructor(readonly pipe: number, readonly len: number) {
    super()
  }
  act(w: World) {
    const p = w.pipes[this.pipe % w.pipes.length]
    if (p.held + this.len > 32 * 1024) {
      w.log('  (pipe full enough: skipped)')
      return
    }
    w.pipeWriteSync(p, this.len, this.pipe)
  }
  toString() {
    return `fs.writeSync(pipe${this.pipe % 2}, ${this.len} bytes)`
  }
}

class PipeDrain extends Cmd {
  constructor(readonly pipe: number) {
    super()
  }
  act(w: World) {
    w.drainPipe(w.pipes[this.pipe % w.pipes.length])
  }
  toString() {
    return `drain(pipe${this.pipe % 2})`
  }
}

const pipeCmd = fc.oneof(
  { weight: 3, arbitrary: fc.record({ p: fc.nat(1), l: fc.integer({ min: 1, max: PIPE_IO_MAX }) }).map(({ p, l }) => new PipeWrite(p, l)) },
  { weight: 1, arbitrary: fc.nat(1).map((p) => new PipeDrain(p)) },
)

// ---------------------------------------------------------------------------
// Close, drop, GC

class ClosePool extends Cmd {
  constructor(readonly pool: number, readonly dispose: boolean) {
    super()
  }
  check(w: World) {
    return livePools(w).length > 0
  }
  act(w: World) {
    const p = pickPool(w, this.pool)
    const what = `${p.name}.${this.dispose ? '[Symbol.dispose]' : 'close'}()`
    const res = thrownCode(() => (this.dispose ? p.real![Symbol.dispose]() : p.real!.close()))
    if (isClosed(p)) {
      if (res.threw) fail(`${what} on a closed pool threw ${res.code}`)
      p.closed = true
      return
    }
    let certain = false
    let maybe = false
    for (const b of p.bufs) {
      const s = w.bufInFlight(b)
      if (s === 'yes') certain = true
      if (s === 'maybe') maybe = true
    }
    if (certain || (maybe && res.threw)) {
      if (!res.threw) fail(`${what} succeeded with buffers in flight`)
      checkErrorShape(res.error, 'ERR_ZCIO_BUFFER_IN_FLIGHT', what)
      w.log('  -> ERR_ZCIO_BUFFER_IN_FLIGHT')
      return
    }
    if (res.threw) fail(`${what} threw ${res.code}: ${(res.error as Error).message}`)
    for (const b of p.bufs) w.markReaped(b)
    p.closed = true
    if (p.ring.table && p.base !== null) p.ring.table = p.ring.table.filter((g) => g.start !== p.base)
    w.log('  -> closed')
  }
  toString() {
    return `pool #${this.pool}.${this.dispose ? '[Symbol.dispose]' : 'close'}()`
  }
}

class CloseRing extends Cmd {
  constructor(readonly ring: number, readonly dispose: boolean) {
    super()
  }
  check(w: World) {
    return liveRings(w).length > 0
  }
  async act(w: World) {
    const r = pickRing(w, this.ring)
    if (r.closed) {
      const res = thrownCode(() => (this.dispose ? r.real![Symbol.dispose]() : r.real!.close()))
      if (res.threw) fail(`${r.name}.close() again threw ${res.code}`)
      return
    }
    w.closeRing(r)
    await tick()
    w.takeManual(r, r.real!.takeCompletions(), `${r.name}.takeCompletions() after close`)
    for (const op of r.ops) {
      if (op.observable && op.status !== 'done') fail(`${op.label} did not complete when ${r.name} was closed`)
    }
  }
  toString() {
    return `ring #${this.ring}.${this.dispose ? '[Symbol.dispose]' : 'close'}()`
  }
}

class DropPool extends Cmd {
  constructor(readonly pool: number) {
    super()
  }
  check(w: World) {
    return livePools(w).length > 0
  }
  act(w: World) {
    const p = pickPool(w, this.pool)
    p.real = null
    if (!isClosed(p) && p.ring.table) {
      const g = p.ring.table.find((x) => x.start === p.base)
      if (g) g.maybeFreed = true
      else p.ring.table = null
    }
    w.log(`  ${p.name} = null`)
  }
  toString() {
    return `drop pool #${this.pool}`
  }
}

class DropRing extends Cmd {
  constructor(readonly ring: number) {
    super()
  }
  check(w: World) {
    return liveRings(w).length > 0
  }
  act(w: World) {
    const r = pickRing(w, this.ring)
    r.real = null
    for (const op of r.manual.values()) if (op.status !== 'done') w.loseOp(op)
    w.log(`  ${r.name} = null`)
  }
  toString() {
    return `drop ring #${this.ring}`
  }
}

class Gc extends Cmd {
  async act(w: World) {
    if (!w.session.hasGc) return
    for (let k = 0; k < 2; k++) {
      globalThis.gc!()
      await tick()
    }
  }
  toString() {
    return 'gc()'
  }
}

class Yield extends Cmd {
  constructor(readonly mode: number) {
    super()
  }
  async act() {
    if (this.mode < 2) await tick()
    else if (this.mode < 3) for (let k = 0; k < 4; k++) await tick()
    else await sleep(this.mode === 3 ? 1 : 5)
  }
  toString() {
    return ['setImmediate', 'setImmediate', '4 x setImmediate', 'sleep 1 ms', 'sleep 5 ms'][this.mode]
  }
}

class Settle extends Cmd {
  async act(w: World) {
    await w.settle()
  }
  toString() {
    return 'settle'
  }
}

const lifecycle = fc.oneof(
  { weight: 2, arbitrary: fc.record({ p: fc.nat(1023), d: fc.boolean() }).map(({ p, d }) => new ClosePool(p, d)) },
  { weight: 3, arbitrary: fc.record({ r: fc.nat(1023), d: fc.boolean() }).map(({ r, d }) => new CloseRing(r, d)) },
  { weight: 1, arbitrary: fc.nat(1023).map((p) => new DropPool(p)) },
  { weight: 1, arbitrary: fc.nat(1023).map((r) => new DropRing(r)) },
  { weight: 1, arbitrary: fc.constant(null).map(() => new Gc()) },
)

const timing = fc.oneof(
  { weight: 3, arbitrary: fc.nat(4).map((m) => new Yield(m)) },
  { weight: 2, arbitrary: fc.constant(null).map(() => new Settle()) },
)

// ---------------------------------------------------------------------------
// Workers terminated mid-flight

const WORKER_CODE = `
const { parentPort, workerData: d } = require('node:worker_threads')
const z = require(d.root)
function start() {
  const ring = new z.Ring({ entries: d.entries })
  const pool = new z.RegisteredBufferPool(ring, 4096, 4)
  const a = pool.acquire(), b = pool.acquire(), c = pool.acquire()
  // Never completes: nobody writes to this FIFO.
  pool.readFixed(d.fifo, a.index, 0, 4096).catch(() => {})
  pool.submitReadFixed(d.fifo, b.index, 0, 100)
  if (d.mode === 'drop') return () => 0 // ring and pool unreachable from here on
  let reads = 0
  const loop = () => pool.readFixed(d.file, c.index, 0, 4096).then(() => { reads++; if (reads < 1e6) loop() }, () => {})
  loop()
  if (d.mode === 'close') ring.close()
  return () => reads
}
const reads = start()
if (d.mode === 'drop' && globalThis.gc) globalThis.gc()
setTimeout(() => parentPort.postMessage({ reads: reads() }), d.delay)
`

class WorkerRun extends Cmd {
  constructor(readonly mode: 'pending' | 'close' | 'drop' | 'early', readonly delay: number, readonly entries: number) {
    super()
  }
  check(w: World) {
    return w.workersStarted < MAX_WORKERS
  }
  async act(w: World) {
    w.workersStarted++
    const s = w.session
    const worker = new Worker(WORKER_CODE, {
      eval: true,
      workerData: { root, fifo: s.workerFifo.fd, file: s.workerFile.fd, mode: this.mode, delay: this.delay, entries: this.entries },
    })
    let error: unknown
    worker.on('error', (e) => {
      error = e
    })
    const exited = new Promise<number>((resolve) => worker.once('exit', resolve))
    if (this.mode !== 'early') {
      const ready = await Promise.race([
        new Promise<string>((resolve) => worker.once('message', (m) => resolve(`ready ${show(m)}`))),
        exited.then((code) => `exited with ${code}`),
        sleep(SETTLE_TIMEOUT_MS * 2).then(() => 'timeout'),
      ])
      w.log(`  worker ${ready}`)
      if (!ready.startsWith('ready')) fail(`worker (${this.mode}) ${ready}${error ? `: ${(error as Error).stack}` : ''}`)
    }
    const started = Date.now()
    const terminated = await Promise.race([worker.terminate(), sleep(SETTLE_TIMEOUT_MS * 2).then(() => 'timeout')])
    if (terminated === 'timeout') fail(`worker.terminate() (${this.mode}) did not finish in ${SETTLE_TIMEOUT_MS * 2} ms`)
    const code = await exited
    w.log(`  worker terminated in ${Date.now() - started} ms, exit code ${code}`)
    if (error) fail(`worker (${this.mode}) failed: ${(error as Error).stack}`)
  }
  toString() {
    return `worker(${this.mode}, ready after ${this.delay} ms, entries ${this.entries}), then terminate()`
  }
}

const workerCmd = fc
  .record({ m: fc.constantFrom<WorkerRun['mode']>('pending', 'close', 'drop', 'early'), d: fc.nat(20), e: fc.constantFrom(1, 4, 64) })
  .map(({ m, d, e }) => new WorkerRun(m, d, e))

// ---------------------------------------------------------------------------

export const commandArb = fc.oneof(
  { weight: 3, arbitrary: newRing },
  { weight: 4, arbitrary: newPool },
  { weight: 1, arbitrary: newBigPool },
  { weight: 12, arbitrary: acquire },
  { weight: 10, arbitrary: indexCall },
  { weight: 4, arbitrary: fill },
  { weight: 24, arbitrary: io },
  { weight: 6, arbitrary: batch },
  { weight: 3, arbitrary: badArgs },
  { weight: 6, arbitrary: ringCall },
  { weight: 6, arbitrary: pipeCmd },
  { weight: 6, arbitrary: lifecycle },
  { weight: 8, arbitrary: timing },
  { weight: 1, arbitrary: workerCmd },
  { weight: 1, arbitrary: flood },
  { weight: 1, arbitrary: fc.nat(1023).map((p) => new Inspect(p)) },
)

export function commandsArb(maxCommands: number, replayPath?: string) {
  return fc.commands([commandArb], { maxCommands, size: 'max', replayPath })
}
