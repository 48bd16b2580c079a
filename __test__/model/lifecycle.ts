// Commands: close and dispose pools and rings (also mid-flight), drop
// references, force GC, yield to the event loop, settle.

import fc from 'fast-check'
import { Cmd, isClosed, livePools, liveRings, pickPool, pickRing } from './cmd.js'
import { checkErrorShape, fail, sleep, thrownCode, tick } from './model.js'
import type { World } from './world.js'

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

export const lifecycle = fc.oneof(
  { weight: 2, arbitrary: fc.record({ p: fc.nat(1023), d: fc.boolean() }).map(({ p, d }) => new ClosePool(p, d)) },
  { weight: 3, arbitrary: fc.record({ r: fc.nat(1023), d: fc.boolean() }).map(({ r, d }) => new CloseRing(r, d)) },
  { weight: 1, arbitrary: fc.nat(1023).map((p) => new DropPool(p)) },
  { weight: 1, arbitrary: fc.nat(1023).map((r) => new DropRing(r)) },
  { weight: 1, arbitrary: fc.constant(null).map(() => new Gc()) },
)

export const timing = fc.oneof(
  { weight: 3, arbitrary: fc.nat(4).map((m) => new Yield(m)) },
  { weight: 2, arbitrary: fc.constant(null).map(() => new Settle()) },
)

