// What a send takes (a Uint8Array or a pool slice), checked, and the
// in-flight marking of pool buffers lent to queued or running sends.

import { invalidArgType, outOfRange } from './errors.js'
import { RegisteredBufferPool } from './pool.js'
import { validateInteger } from './validate.js'

/** A pool buffer to send in place: `length` bytes from `offset` (default: the whole buffer). */
export interface PoolSlice {
  pool: RegisteredBufferPool
  index: number
  offset?: number
  length?: number
}

/** What a send takes: any `Uint8Array`, or a pool buffer (sent as a registered buffer). */
export type SendData = Uint8Array | PoolSlice

/** The outcome of a zero-copy send. */
export interface SendZcResult {
  /** Bytes sent; below the total when the send stopped part-way. */
  bytes: number
  /** The kernel copied (at least partly) instead of sending from the memory itself (always on loopback). */
  copied: boolean
  /** Indices (in the call's buffer list) of buffers not sent in full: they are the caller's again. */
  unsent: number[]
}

/** Queued or in-flight sends per pool buffer: the first marks it in flight, the last unmarks it. */
const lent = new WeakMap<RegisteredBufferPool, Map<number, number>>()

export function lend(d: PoolSlice): void {
  let uses = lent.get(d.pool)
  if (uses === undefined) lent.set(d.pool, (uses = new Map()))
  const n = uses.get(d.index) ?? 0
  if (n === 0) d.pool.markInFlight(d.index) // throws unless the buffer is acquired
  uses.set(d.index, n + 1)
}

export function unlend(d: PoolSlice): void {
  const uses = lent.get(d.pool)
  const n = uses?.get(d.index) ?? 0
  if (n > 1) return void uses!.set(d.index, n - 1)
  uses?.delete(d.index)
  try {
    d.pool.completeInFlight(d.index)
  } catch {
    // The pool (or its ring) was closed meanwhile: nothing to give back.
  }
}

export function poolSize(pool: RegisteredBufferPool): number {
  return pool.bufferSize
}

export function byteLength(d: SendData): number {
  if (d instanceof Uint8Array) return d.byteLength
  const offset = d.offset ?? 0
  return d.length ?? poolSize(d.pool) - offset
}

export function checkData(d: unknown, i: number): asserts d is SendData {
  if (d instanceof Uint8Array) {
    if (d.byteLength > 2 ** 31 - 1) throw outOfRange(`buffers[${i}].byteLength`, '<= 2147483647', d.byteLength)
    return
  }
  if (typeof d === 'object' && d !== null && (d as PoolSlice).pool instanceof RegisteredBufferPool) {
    // Checked in full here, so that a send the kernel would refuse fails on
    // its own when it is queued, never part-way through a chain.
    const s = d as PoolSlice
    const size = s.pool.bufferSize
    validateInteger(s.index, `buffers[${i}].index`, 0, s.pool.totalCount - 1)
    const offset = s.offset ?? 0
    validateInteger(offset, `buffers[${i}].offset`, 0, size)
    const length = s.length ?? size - offset
    validateInteger(length, `buffers[${i}].length`, 0, size - offset)
    return
  }
  throw invalidArgType(`buffers[${i}]`, 'an instance of Uint8Array or a { pool, index } pool slice', d)
}
