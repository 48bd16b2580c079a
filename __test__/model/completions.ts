// Commands: completions of low-level submissions (takeCompletions,
// completions()), submit(), and pipe writes and drains from JavaScript.

import fc from 'fast-check'
import { Cmd, liveRings, pickRing } from './cmd.js'
import { type Completion, type RingM, type WaiterM, ModelError, PIPE_IO_MAX, checkErrorShape, cover, fail, show, thrownCode } from './model.js'
import type { World } from './world.js'

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

export const ringCall = fc.oneof(
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

export const pipeCmd = fc.oneof(
  { weight: 3, arbitrary: fc.record({ p: fc.nat(1), l: fc.integer({ min: 1, max: PIPE_IO_MAX }) }).map(({ p, l }) => new PipeWrite(p, l)) },
  { weight: 1, arbitrary: fc.nat(1).map((p) => new PipeDrain(p)) },
)

