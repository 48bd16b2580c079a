// The performance bars the library is held to, checked against one run.

import { FH_READ, FS_READ, GROUP_RAND_D1, GROUP_RAND_D64, GROUP_SEQ, READ_SYNC, SEQ_DEPTH, ZCIO_BATCH, ZCIO_PROMISE, onBackend } from './common.js'
import type { BenchResult, CaseResult, Group } from './common.js'
import type { CallsResult } from './calls.js'
import { outputWidth, table } from './layout.js'
import type { Align } from './layout.js'
import { fmtBytes, fmtHeap, fmtRatio, passMark } from './format.js'

/** A zcio case's JS heap may grow by this much at most over its timed run. */
export const HEAP_FLAT_BYTES = 256 * 1024

export interface Bar {
  bar: string
  /** `ratio`: measured has to reach target; `bytes`: measured has to stay at or under it. */
  unit: 'ratio' | 'bytes'
  /** Measured value: a ratio, or the largest heap delta in bytes. */
  measured: number | null
  /** The bar the measured value has to reach (ratio) or stay under (bytes). */
  target: number
  /** Null when a side of the comparison was not measured. */
  pass: boolean | null
  detail: string
}

function zcioCase(res: BenchResult, group: Group, name: string): CaseResult | undefined {
  return res.results.find((r) => r.group === group && r.name === name)
}

/** The zcio case `name` of `group` that ran on epoll (either name it may have). */
function epollCase(res: BenchResult, group: Group, name: string): CaseResult | undefined {
  return res.results.find((r) => r.group === group && r.backend === 'epoll' && (r.name === name || r.name === onBackend(name, 'epoll')))
}

function nodeCase(res: BenchResult, group: Group, name: string, depth: CaseResult['depth']): CaseResult | undefined {
  return res.results.find((r) => r.group === group && r.name === name && r.depth === depth)
}

function ratioBar(bar: string, target: number, num: number | undefined, den: number | undefined, detail: string): Bar {
  const measured = num !== undefined && den !== undefined && den > 0 ? num / den : null
  return { bar, unit: 'ratio', measured, target, pass: measured === null ? null : measured >= target, detail }
}

/**
 * The bars, checked against `res`. `scale` holds every bar that many times as
 * strict (`--bar-scale`): ratio targets are multiplied by it, byte limits
 * divided by it.
 */
export function bars(res: BenchResult, scale = 1): Bar[] {
  const out: Bar[] = []
  const p64 = zcioCase(res, GROUP_RAND_D64, ZCIO_PROMISE)
  const b64 = zcioCase(res, GROUP_RAND_D64, ZCIO_BATCH)
  out.push(ratioBar('random 4K d64: zcio promise / zcio batch', 0.7 * scale, p64?.opsPerSec, b64?.opsPerSec, 'readFixed per op vs readFixedBatch'))

  const p1 = zcioCase(res, GROUP_RAND_D1, ZCIO_PROMISE)
  const fio1 = res.fio?.runs.find((f) => f.group === GROUP_RAND_D1 && f.variant === 'tuned')
  out.push(ratioBar('random 4K d1: zcio promise / fio tuned', 0.65 * scale, p1?.opsPerSec, fio1?.iops, 'readFixed vs fio io_uring tuned, depth 1'))

  const fio64 = (res.fio?.runs ?? []).filter((f) => f.group === GROUP_RAND_D64 && f.iops !== undefined)
  const best = fio64.reduce<(typeof fio64)[number] | undefined>((a, f) => (a && (a.iops ?? 0) >= (f.iops ?? 0) ? a : f), undefined)
  out.push(
    ratioBar('random 4K d64: zcio batch / best fio', 1.0 * scale, b64?.opsPerSec, best?.iops, best ? `readFixedBatch vs ${best.name}` : 'no fio run'),
  )

  // The epoll backend against Node's own calls, same run.
  const e1 = epollCase(res, GROUP_RAND_D1, ZCIO_PROMISE)
  const e64 = epollCase(res, GROUP_RAND_D64, ZCIO_PROMISE)
  const eSeq = epollCase(res, GROUP_SEQ, ZCIO_PROMISE)
  const ops = (r: CaseResult | undefined): number | undefined => r?.opsPerSec
  out.push(
    ratioBar('epoll random 4K d1: zcio promise / fs.readSync', 0.8 * scale, ops(e1), ops(nodeCase(res, GROUP_RAND_D1, READ_SYNC, 1)), 'readFixed on epoll vs blocking reads'),
    ratioBar('epoll random 4K d64: zcio promise / fs.read', 1.0 * scale, ops(e64), ops(nodeCase(res, GROUP_RAND_D64, FS_READ, 64)), 'readFixed on epoll vs fs.read, depth 64'),
    ratioBar('epoll random 4K d64: zcio promise / FileHandle.read', 1.0 * scale, ops(e64), ops(nodeCase(res, GROUP_RAND_D64, FH_READ, 64)), 'readFixed on epoll vs fs.promises, depth 64'),
    ratioBar(
      `epoll sequential 1M d${SEQ_DEPTH}: zcio promise / fs.read`,
      1.0 * scale,
      ops(eSeq),
      ops(nodeCase(res, GROUP_SEQ, FS_READ, SEQ_DEPTH)),
      `readFixed on epoll vs fs.read, depth ${SEQ_DEPTH}`,
    ),
  )

  const deltas = res.results.filter((r) => r.heapDeltaBytes !== undefined)
  const worst = deltas.reduce<CaseResult | undefined>((a, r) => (a && (a.heapDeltaBytes ?? 0) >= (r.heapDeltaBytes ?? 0) ? a : r), undefined)
  const maxDelta = worst?.heapDeltaBytes
  const limit = HEAP_FLAT_BYTES / scale
  out.push({
    bar: 'JS heap flat over every zcio case',
    unit: 'bytes',
    measured: maxDelta ?? null,
    target: limit,
    pass: maxDelta === undefined ? null : maxDelta <= limit,
    detail: deltas.length
      ? deltas.map((r) => `${shortName(r)} ${fmtHeap(r.heapDeltaBytes)}`).join(', ') + (res.config.gcExposed ? '' : ' (without --expose-gc)')
      : 'no zcio case ran',
  })
  return out
}

// "d64 batch", "seq promise": a zcio case in a few characters.
function shortName(r: CaseResult): string {
  const where = r.group === GROUP_RAND_D1 ? 'd1' : r.group === GROUP_RAND_D64 ? 'd64' : 'seq'
  const batch = r.name === ZCIO_BATCH || r.name === onBackend(ZCIO_BATCH, 'epoll')
  return `${where} ${batch ? 'batch' : 'promise'}${r.name.endsWith(']') ? ` [${r.backend}]` : ''}`
}

export function fmtMeasured(b: Bar): string {
  if (b.measured === null) return '-'
  return b.unit === 'bytes' ? fmtHeap(b.measured) : fmtRatio(b.measured)
}

export function fmtTarget(b: Bar): string {
  return b.unit === 'bytes' ? `<= ${fmtBytes(b.target)}` : `>= ${fmtRatio(b.target)}`
}

/** The summary after the tables: one line per bar, and the per-call targets. */
export function reportBars(list: readonly Bar[], calls: CallsResult | null, width: number = outputWidth()): string {
  const rows: string[][] = [['bar', 'measured', 'target', '', 'detail']]
  const align: Align[] = ['l', 'r', 'r', 'l', 'l']
  for (const b of list) rows.push([b.bar, fmtMeasured(b), fmtTarget(b), b.pass === null ? 'n/a' : passMark(b.pass), b.detail])
  if (calls) {
    const targeted = calls.results.filter((r) => r.pass !== null)
    const met = targeted.filter((r) => r.pass).length
    const missed = targeted.filter((r) => !r.pass)
    rows.push([
      'per-call targets',
      `${met}/${targeted.length} met`,
      'all',
      targeted.length ? passMark(met === targeted.length) : 'n/a',
      missed.length ? `${missed.length} missed (see the per-call table)` : '',
    ])
  }
  return ['', 'summary', table(rows, align, width)].join('\n') + '\n'
}
