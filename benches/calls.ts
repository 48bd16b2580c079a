// Cost of single calls into the library from JavaScript: nanoseconds per
// call, the median of several batches of many calls each, next to an empty
// function call and `Buffer.alloc(0)` for scale.

import { BLOCK, Progress, errorCode, errorMessage, loadZcio } from './common.js'
import type { RegisteredBufferPool, Ring, ZcioStatus } from './common.js'
import { outputWidth, table, wrapLine } from './layout.js'
import type { Align } from './layout.js'
import { fmtTargetNs, passMark } from './format.js'

export interface CallsOptions {
  /** Calls per timed batch, at most (default 1e6). */
  callsPerBatch?: number
  /** A batch is cut to fewer calls when it would take longer than this (default 400 ms). */
  maxBatchMs?: number
  /** Timed batches; the median is reported (default 7). */
  batches?: number
  /** Holds the targets this many times as strict: a call has to take at most target / scale ns (default 1). */
  targetScale?: number
  quiet?: boolean
  progressStream?: NodeJS.WriteStream
}

export interface CallResult {
  name: string
  /** What the library aims at, in ns per call (divided by `targetScale`); null for the reference rows. */
  targetNs: number | null
  /** Calls in each timed batch. */
  callsPerBatch: number
  /** Median ns per call over the batches. */
  nsPerCall: number
  minNs: number
  maxNs: number
  pass: boolean | null
}

export interface CallsSkipped {
  name: string
  targetNs: number | null
  reason: string
}

export interface CallsResult {
  /** Calls per batch at most (each row has its own count). */
  maxCallsPerBatch: number
  batches: number
  results: CallResult[]
  skipped: CallsSkipped[]
}

/** Runs `n` calls; returns something derived from them so none can be dropped. */
type Loop = (n: number) => number

interface CallCase {
  name: string
  targetNs: number | null
  /** Null when the library is not available. */
  loop: Loop | null
}

/** Targets: acquire + release as a pair, and plain reads of a pool. */
export const ACQUIRE_RELEASE_TARGET_NS = 400
export const READ_CALL_TARGET_NS = 50

function cases(pool: RegisteredBufferPool | null, ring: Ring | null, held: number): CallCase[] {
  const empty = (x: number): number => x + 1
  return [
    {
      name: 'pool.acquire() + pool.release(i)',
      targetNs: ACQUIRE_RELEASE_TARGET_NS,
      loop: pool
        ? (n) => {
            let sum = 0
            for (let i = 0; i < n; i++) {
              const { index } = pool.acquire()
              pool.release(index)
              sum += index
            }
            return sum
          }
        : null,
    },
    {
      name: 'pool.get(i)',
      targetNs: READ_CALL_TARGET_NS,
      loop: pool
        ? (n) => {
            let view: Uint8Array = new Uint8Array(0)
            for (let i = 0; i < n; i++) view = pool.get(held)
            return view.length
          }
        : null,
    },
    {
      name: 'pool.availableCount',
      targetNs: READ_CALL_TARGET_NS,
      loop: pool
        ? (n) => {
            let sum = 0
            for (let i = 0; i < n; i++) sum += pool.availableCount
            return sum
          }
        : null,
    },
    {
      name: 'pool.inFlightCount',
      targetNs: READ_CALL_TARGET_NS,
      loop: pool
        ? (n) => {
            let sum = 0
            for (let i = 0; i < n; i++) sum += pool.inFlightCount
            return sum
          }
        : null,
    },
    {
      name: 'ring.inFlightCount',
      targetNs: READ_CALL_TARGET_NS,
      loop: ring
        ? (n) => {
            let sum = 0
            for (let i = 0; i < n; i++) sum += ring.inFlightCount
            return sum
          }
        : null,
    },
    {
      name: 'empty JS function (reference)',
      targetNs: null,
      loop: (n) => {
        let sum = 0
        for (let i = 0; i < n; i++) sum = empty(sum)
        return sum
      },
    },
    {
      name: 'Buffer.alloc(0) (reference)',
      targetNs: null,
      loop: (n) => {
        let buf = Buffer.alloc(0)
        for (let i = 0; i < n; i++) buf = Buffer.alloc(0)
        return buf.length
      },
    },
  ]
}

function median(sorted: readonly number[]): number {
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

// Keeps the loops' results observable, so the JIT cannot drop the calls.
export let sink = 0

interface Measurement {
  calls: number
  median: number
  min: number
  max: number
}

function measure(loop: Loop, maxCalls: number, batches: number, maxBatchMs: number): Measurement {
  // Warm-up: lets the JIT optimise the loop, and sizes the batches.
  const warm = Math.max(1, Math.min(maxCalls, 100_000))
  const t0 = process.hrtime.bigint()
  sink += loop(warm)
  const warmNs = Math.max(1, Number(process.hrtime.bigint() - t0)) / warm
  const calls = Math.max(1000, Math.min(maxCalls, Math.floor((maxBatchMs * 1e6) / warmNs)))
  const ns: number[] = []
  for (let b = 0; b < batches; b++) {
    const start = process.hrtime.bigint()
    sink += loop(calls)
    ns.push(Number(process.hrtime.bigint() - start) / calls)
  }
  ns.sort((a, b) => a - b)
  return { calls, median: median(ns), min: ns[0], max: ns[ns.length - 1] }
}

/** Measures the per-call table; never throws for a missing library (its rows are skipped). */
export async function runCalls(opts: CallsOptions = {}, loaded?: ZcioStatus): Promise<CallsResult> {
  const callsPerBatch = opts.callsPerBatch ?? 1e6
  const batches = opts.batches ?? 7
  const maxBatchMs = opts.maxBatchMs ?? 400
  const scale = opts.targetScale ?? 1
  const progress = new Progress(opts.progressStream || process.stderr, opts.quiet)
  const zcio = loaded ?? (await loadZcio())
  let reason = zcio.reason || 'zcio unavailable'
  let ring: Ring | null = null
  let pool: RegisteredBufferPool | null = null
  let held = -1
  const results: CallResult[] = []
  const skipped: CallsSkipped[] = []
  try {
    if (zcio.lib) {
      try {
        ring = new zcio.lib.Ring()
        pool = new zcio.lib.RegisteredBufferPool(ring, BLOCK, 64)
        held = pool.acquire().index
      } catch (e) {
        const code = errorCode(e)
        reason = `setting up a ring and pool failed: ${code ? code + ': ' : ''}${errorMessage(e)}`
        pool = null
      }
    }
    const all = cases(pool, pool ? ring : null, held).map((c) => ({ ...c, targetNs: c.targetNs === null ? null : c.targetNs / scale }))
    for (const [k, c] of all.entries()) {
      if (!c.loop) {
        skipped.push({ name: c.name, targetNs: c.targetNs, reason })
        continue
      }
      const label = `[${k + 1}/${all.length}] calls > ${c.name}`
      progress.line(`${label} ...`)
      progress.update(`${label}  ${batches} batches`)
      const m = measure(c.loop, callsPerBatch, batches, maxBatchMs)
      progress.clear()
      progress.line(`${label}: ${m.median.toFixed(1)} ns/call`)
      results.push({
        name: c.name,
        targetNs: c.targetNs,
        callsPerBatch: m.calls,
        nsPerCall: m.median,
        minNs: m.min,
        maxNs: m.max,
        pass: c.targetNs === null ? null : m.median <= c.targetNs,
      })
    }
  } finally {
    progress.clear()
    if (ring) ring.close()
  }
  return { maxCallsPerBatch: callsPerBatch, batches, results, skipped }
}

function fmtNs(ns: number): string {
  return ns >= 100 ? ns.toFixed(0) : ns.toFixed(1)
}

export function reportCalls(res: CallsResult, width: number = outputWidth()): string {
  const head = ['call', 'ns/call', 'min..max', 'calls/batch', 'target', '']
  const align: Align[] = ['l', 'r', 'r', 'r', 'r', 'l']
  const rows: string[][] = [head]
  for (const r of res.results) {
    rows.push([
      r.name,
      fmtNs(r.nsPerCall),
      `${fmtNs(r.minNs)}..${fmtNs(r.maxNs)}`,
      r.callsPerBatch.toLocaleString('en-US'),
      fmtTargetNs(r.targetNs),
      passMark(r.pass),
    ])
  }
  for (const s of res.skipped) rows.push([s.name, 'skipped', '-', '-', fmtTargetNs(s.targetNs), ''])
  const out = ['', `per call: median ns over ${res.batches} timed batches, after a warm-up batch`, table(rows, align, width)]
  for (const reason of new Set(res.skipped.map((s) => s.reason))) out.push(...wrapLine(`skipped: ${reason}`, width))
  return out.join('\n') + '\n'
}
