// What every command of the model-based test shares: the base class (act,
// let reactions run, check the world) and how numbers pick rings, pools and
// buffers.
//
// Commands name rings, pools and buffers by number; the number is resolved
// against what exists when the command runs (modulo the live ones), so every
// generated sequence does something and shrinking keeps sequences meaningful.

import fc from 'fast-check'
import { COMMAND_TIMEOUT_MS, HangError, type PoolM, type RingM, cover, tick } from './model.js'
import type { World } from './world.js'

export abstract class Cmd implements fc.AsyncCommand<World, World> {
  check(w: World): boolean {
    void w
    return true
  }

  async run(w: World): Promise<void> {
    w.commands++
    cover(`command ${this.constructor.name}`)
    w.log(`${this}`)
    await withDeadline(Promise.resolve(this.act(w)), `${this}`)
    await tick()
    w.check(`after ${this}`)
  }

  protected abstract act(w: World): Promise<void> | void
  abstract toString(): string
}

/** `p`, or a HangError once COMMAND_TIMEOUT_MS pass without it settling. */
async function withDeadline(p: Promise<void>, what: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new HangError(`hang: "${what}" did not finish within ${COMMAND_TIMEOUT_MS / 1000} s`)), COMMAND_TIMEOUT_MS)
  })
  try {
    await Promise.race([p, deadline])
  } finally {
    clearTimeout(timer)
  }
}

export const pickOf = <T>(xs: T[], n: number): T => xs[n % xs.length]

/** A pool the program holds: an open one 7 times out of 8 when there is one. */
export function pickPool(w: World, n: number): PoolM {
  const live = livePools(w)
  const open = live.filter((p) => !isClosed(p))
  return open.length > 0 && n % 8 !== 0 ? open[(n >> 3) % open.length] : live[n % live.length]
}

/** A ring the program holds, preferring open ones likewise. */
export function pickRing(w: World, n: number): RingM {
  const live = liveRings(w)
  const open = live.filter((r) => !r.closed)
  return open.length > 0 && n % 8 !== 0 ? open[(n >> 3) % open.length] : live[n % live.length]
}

export function livePools(w: World): PoolM[] {
  return w.pools.filter((p) => p.real !== null)
}

export function liveRings(w: World): RingM[] {
  return w.rings.filter((r) => r.real !== null)
}

export function isClosed(p: PoolM): boolean {
  return p.closed || p.ring.closed
}

/** A buffer of the pool: one acquired (usually), or any index incl. one past the end. */
export interface BufSel {
  any: boolean
  v: number
}

/** I/O needs an acquired buffer: take one first when the pool has none (logged). */
export function resolveBuf(p: PoolM, s: BufSel): number {
  if (s.any) {
    // Any index, including just past the end and the largest valid number.
    const i = s.v % (p.count + 2)
    return i === p.count + 1 ? 2 ** 32 - 1 : i
  }
  const acquired = [...p.acquired].sort((a, b) => a - b)
  return acquired.length > 0 ? acquired[s.v % acquired.length] : s.v % p.count
}

export const bufSel: fc.Arbitrary<BufSel> = fc.record({ any: fc.nat(99).map((r) => r < 12), v: fc.nat(1023) })

// ---------------------------------------------------------------------------
// Rings and pools

export type Bad = { value: unknown; code: string; label: string }

export const badNumbers = (max: number): Bad[] => [
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

