// Commands: readFixed/writeFixed and their low-level forms, with reactions
// that act inside the driver's settle round; floods; inspect.

import fc from 'fast-check'
import { getSystemErrorName, inspect } from 'node:util'
import { ensureAcquired } from './buffers.js'
import { Cmd, isClosed, livePools, pickPool } from './cmd.js'
import { type Op, type PoolM, ModelError, checkErrorShape, cover, fail, show, thrownCode } from './model.js'
import { type IoSpec, type Resolved, ioSpec, opError, resolveIo, resolveTarget, roomFor } from './targets.js'
import type { World } from './world.js'

export function kernelErrorShape(e: unknown, op: Op): number {
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
export function issueIo(w: World, p: PoolM, x: Resolved, write: boolean, api: 'promise' | 'manual', o: IssueOptions = {}): Op | null {
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
    // On epoll a transfer the page cache (or a ready pipe) serves is done
    // in the call: it may be over already.
    if (p.ring.real?.backend === 'epoll') op.maybe = true
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

export const flood = fc
  .record({ p: fc.nat(1023), n: fc.constantFrom(100, 300, 1100, 2500), t: fc.constantFrom<Flood['target']>('zero', 'zero', 'null', 'file0', 'unused'), w: fc.boolean() })
  .map(({ p, n, t, w }) => new Flood(p, n, t, w))

export class Inspect extends Cmd {
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

export const io = fc.oneof(
  { weight: 4, arbitrary: fc.record({ p: fc.nat(1023), s: ioSpec, c: chainArb }).map(({ p, s, c }) => new Io(p, 'promise', s, c)) },
  { weight: 1, arbitrary: fc.record({ p: fc.nat(1023), s: ioSpec }).map(({ p, s }) => new Io(p, 'manual', s, { kind: 'none' })) },
)

