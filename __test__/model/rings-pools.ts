// Commands: new rings and pools, valid and invalid.

import fc from 'fast-check'
import { type Bad, Cmd, badNumbers, liveRings, pickRing } from './cmd.js'
import { type BufM, type PoolM, type RingM, checkErrorShape, cover, fail, show, thrownCode, zcio } from './model.js'
import type { World } from './world.js'

const MAX_RINGS = 6
const MAX_POOLS = 12
const MAX_BIG_POOLS = 2

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
  { value: { busyPoll: -1 }, code: 'ERR_OUT_OF_RANGE', label: '{ busyPoll: -1 }' },
  { value: { busyPoll: 100_001 }, code: 'ERR_OUT_OF_RANGE', label: '{ busyPoll: 100_001 }' },
  { value: { busyPoll: 2.5 }, code: 'ERR_OUT_OF_RANGE', label: '{ busyPoll: 2.5 }' },
  { value: { busyPoll: '10' }, code: 'ERR_INVALID_ARG_TYPE', label: `{ busyPoll: '10' }` },
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
    // An epoll ring refuses it (ERR_ZCIO_UNSUPPORTED, naming the backend).
    const onEpoll = code === 'ERR_ZCIO_UNSUPPORTED' && zcio.probe().backend === 'epoll'
    if (sqpoll && (code === 'EPERM' || code === 'EACCES' || code === 'ERR_ZCIO_URING_UNAVAILABLE' || onEpoll)) {
      w.log(`  new Ring(${show(options)}) -> ${code}: SQPOLL refused here`)
      cover('SQPOLL ring refused by the system')
      return null
    }
    fail(`new Ring(${show(options)}) threw ${code}: ${(e as Error).message}`)
  }
  const r: RingM = {
    id: w.id(), name: `ring${w.rings.length}`, real: ring, entries, sqpoll, deferTaskrun: ring.features.deferTaskrun, closed: false,
    // The buffer table is the kernel's, modelled on io_uring only.
    pools: [], ops: new Set(), manual: new Map(), waiters: [], table: ring.backend === 'io_uring' ? [] : null,
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

export const newRing = fc.oneof(
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

export const newPool = fc.oneof(
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

export const newBigPool = fc
  .record({ r: fc.nat(1023), s: fc.constantFrom(1, 64), c: fc.constantFrom(4096, 8192, 12288, 16384) })
  .map(({ r, s, c }) => new NewBigPool(r, s, c))
