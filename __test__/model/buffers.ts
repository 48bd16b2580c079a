// Commands: acquire, tryAcquire, release, get, markInFlight,
// completeInFlight, and writes into views from JavaScript.

import fc from 'fast-check'
import { type BufSel, Cmd, bufSel, isClosed, livePools, pickPool, resolveBuf } from './cmd.js'
import { type BufM, type PoolM, checkErrorShape, cover, fail, show, thrownCode } from './model.js'
import type { World } from './world.js'

// Buffers


/** I/O needs an acquired buffer: take one first when the pool has none (logged). */
export function ensureAcquired(w: World, p: PoolM, s: BufSel): void {
  if (!s.any && p.acquired.size === 0 && !isClosed(p) && p.free.length > 0) doAcquire(w, p, false)
}
export function doAcquire(w: World, p: PoolM, tryMode: boolean): void {
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

export const acquire = fc.record({ p: fc.nat(1023), t: fc.boolean() }).map(({ p, t }) => new Acquire(p, t))

export type IndexMethod = 'release' | 'get' | 'markInFlight' | 'completeInFlight'

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

export const indexCall = fc
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

export const fill = fc.record({ p: fc.nat(1023), b: fc.nat(1023), a: fc.nat(1 << 16), l: fc.nat(1 << 16), s: fc.nat(255) }).map(({ p, b, a, l, s }) => new Fill(p, b, a, l, s))
