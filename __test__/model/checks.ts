// The checks after every command: each ring's and pool's counts, states,
// views and get() against the model.

import { type PoolM, type RingM, fail, thrownCode, cover } from './model.js'
import type { World } from './world.js'

export function check(w: World, where: string): void {
  if (w.failures.length > 0) fail(w.failures.join('\n'))
  for (const r of w.rings) checkRing(w, r, where)
  for (const p of w.pools) checkPool(w, p, where)
}

function checkRing(w: World, r: RingM, where: string): void {
  let min = 0
  let max = 0
  for (const op of r.ops) {
    const c = w.inCore(op)
    if (c === 'yes') min++
    if (c !== 'no') max++
  }
  if (r.closed) {
    for (const op of r.ops) if (op.status === 'pending') fail(`${where}: ${op.label} is still pending on closed ${r.name}`)
  }
  // completions() resolves once no low-level op is in flight.
  if (!w.manualMaybeInFlight(r)) {
    for (const w of r.waiters) {
      if (!w.settled) fail(`${where}: completions() #${w.id} of ${r.name} is still waiting with no low-level operation in flight`)
    }
  }
  const ring = r.real
  if (!ring) return
  const n = ring.inFlightCount
  if (!(n >= min && n <= max)) fail(`${where}: ${r.name}.inFlightCount is ${n}, expected ${min === max ? min : `${min}..${max}`}`)
  if (ring.closed !== r.closed) fail(`${where}: ${r.name}.closed is ${ring.closed}`)
}

function checkPool(w: World, p: PoolM, where: string): void {
  const pool = p.real
  if (!pool) {
    // Views outlive their pool: they work until the pool or ring is closed.
    checkViews(w, p, where)
    return
  }
  const closed = p.closed || p.ring.closed
  if (pool.closed !== closed) fail(`${where}: ${p.name}.closed is ${pool.closed}, expected ${closed}`)
  let fMin = 0
  let fMax = 0
  let kMin = 0
  let kMax = 0
  for (const i of p.acquired) {
    const b = p.bufs[i]
    const s = w.bufInFlight(b)
    if (s === 'yes') fMin++
    if (s !== 'no') fMax++
  }
  for (const b of p.bufs) {
    for (const op of b.ops) {
      if (op.pool !== p) continue
      const c = w.inCore(op)
      if (c === 'yes') kMin++
      if (c !== 'no') kMax++
    }
  }
  // Ops of released buffers can still be unobserved; count the pool's ops.
  const s = pool.stats()
  const available = p.count - p.acquired.size
  const expect = (name: string, got: number, lo: number, hi = lo) => {
    if (!(got >= lo && got <= hi)) fail(`${where}: ${p.name} ${name} is ${got}, expected ${lo === hi ? lo : `${lo}..${hi}`}`)
  }
  expect('totalCount', pool.totalCount, p.count)
  expect('stats().totalCount', s.totalCount, p.count)
  expect('bufferSize', pool.bufferSize, p.size)
  expect('stats().bufferSize', s.bufferSize, p.size)
  expect('availableCount', pool.availableCount, available)
  expect('stats().availableCount', s.availableCount, available)
  expect('inFlightCount', pool.inFlightCount, fMin, fMax)
  expect('stats().inFlightCount', s.inFlightCount, pool.inFlightCount)
  expect('acquiredCount', pool.acquiredCount, p.count - available - pool.inFlightCount)
  expect('stats().acquiredCount', s.acquiredCount, pool.acquiredCount)
  if (pool.isExhausted !== (available === 0)) fail(`${where}: ${p.name}.isExhausted is ${pool.isExhausted} with ${available} available`)
  expect('stats().acquires', s.acquires, p.acquires)
  expect('stats().exhausted', s.exhausted, p.exhausted)
  expect('stats().releases', s.releases, p.releases)
  expect('stats().submitted', s.submitted, p.submitted)
  expect('stats().kernelOpCount', s.kernelOpCount, kMin, kMax)
  expect('stats().completed', s.completed, s.submitted - s.kernelOpCount)
  let unobservedDone = 0
  for (const b of p.bufs) for (const op of b.ops) if (op.pool === p && op.status !== 'done' && w.inCore(op) !== 'yes') unobservedDone++
  expect('stats().failed', s.failed, p.observedFailed, p.observedFailed + unobservedDone)
  // Views and get().
  checkViews(w, p, where)
  const probe = [...p.acquired].slice(0, 64)
  for (let i = 0; i < Math.min(3, p.count); i++) probe.push(i)
  for (const i of probe) {
    const b = p.bufs[i]
    const r = thrownCode(() => pool.get(i))
    const want = closed ? 'ERR_ZCIO_CLOSED' : b.acquired ? undefined : 'ERR_ZCIO_NOT_ACQUIRED'
    if (r.code !== want) fail(`${where}: ${p.name}.get(${i}) ${r.threw ? `threw ${r.code}` : 'returned a view'}, expected ${want ?? 'a view'}`)
    if (!r.threw) {
      const v = pool.get(i)
      if (b.view && v !== b.view) fail(`${where}: ${p.name}.get(${i}) is not the view acquire() gave`)
    }
  }
}

/** Views have length 0 once their pool or ring was closed, the buffer size before. */
function checkViews(w: World, p: PoolM, where: string): void {
  const closed = p.closed || p.ring.closed
  for (const b of p.bufs) {
    if (!b.view) continue
    if (!p.real && closed && b.view.length === 0) cover('view of a dropped pool emptied by close')
    const want = closed ? 0 : p.size
    if (b.view.length !== want) {
      fail(`${where}: the view of ${p.real ? '' : 'dropped '}${p.name}[${b.index}] has length ${b.view.length}, expected ${want}${closed ? ' (closed)' : ''}`)
    }
  }
}

