// Text tables and the JSON document of a bench run.

import type { Bar } from './bars.js'
import type { CallsResult } from './calls.js'
import type { BenchResult, CaseResult, FioRun, MachineFacts, SkippedCase } from './common.js'
import { fitText, outputWidth, table, wrapLine } from './layout.js'
import type { Align } from './layout.js'
import { fmtBytes, fmtGb, fmtHeap, fmtInt, fmtRatio } from './format.js'

type Entry = { kind: 'result'; r: CaseResult } | { kind: 'skipped'; r: SkippedCase }

/** The tables of a run, fitted to `width` columns. */
export function report(res: BenchResult, width: number = outputWidth()): string {
  const { machine: m, config: c } = res
  const out: string[] = []
  out.push(
    `zcio bench: ${m.cpus} CPU x ${m.cpuModel} | kernel ${m.kernelRelease} | Node ${m.node} | ` +
      `file ${fmtBytes(c.sizeBytes)} | ${c.durationSec} s per case (+${c.warmupSec} s warm-up)`,
  )
  out.push(`file: ${c.file} (page-cache warm, deleted)${res.fio ? ` | reference: ${res.fio.version}` : ''}`)
  if (m.backend) out.push(`zcio backend: ${m.backend}`)
  for (const note of res.notes) out.push(`note: ${note}`)

  const showHeap = res.results.some((r) => r.heapDeltaBytes !== undefined)
  const head = ['case', 'depth', 'IOPS', 'GB/s', 'vs fs.read', 'vs fio tuned']
  const align: Align[] = ['l', 'r', 'r', 'r', 'r', 'r']
  if (showHeap) {
    head.push('heap delta')
    align.push('r')
  }
  const groups = [...new Set([...res.results, ...res.skipped].map((r) => r.group))]
  let footnote = 0
  for (const group of groups) {
    const rows: (string | number)[][] = [head]
    const entries: Entry[] = [
      ...res.results.filter((r) => r.group === group).map((r): Entry => ({ kind: 'result', r })),
      ...res.skipped.filter((r) => r.group === group).map((r): Entry => ({ kind: 'skipped', r })),
    ]
    for (const e of entries) {
      if (e.kind === 'result') {
        const r = e.r
        const row = [r.name, r.depth, fmtInt(r.opsPerSec), fmtGb(r.gbPerSec), fmtRatio(r.ratioToFsRead), fmtRatio(r.ratioToFio)]
        if (showHeap) row.push(fmtHeap(r.heapDeltaBytes))
        rows.push(row)
      } else {
        const row = [e.r.name, e.r.depth, 'skipped', '-', '-', '-']
        if (showHeap) row.push('-')
        rows.push(row)
      }
    }
    const footnotes: string[] = []
    for (const f of res.fio?.runs.filter((x) => x.group === group) ?? []) {
      footnote++
      rows.push(fioRow(f, footnote, showHeap))
      footnotes.push(...wrapLine(`  [${footnote}] ${f.command}`, width, true))
    }
    out.push('')
    out.push(group)
    out.push(table(rows, align, width))
    out.push(...footnotes)
  }
  if (res.skipped.some((s) => !res.notes.some((n) => n.includes(s.reason)))) {
    out.push('')
    for (const reason of new Set(res.skipped.map((s) => s.reason))) {
      if (!res.notes.some((n) => n.includes(reason))) out.push(`skipped: ${reason}`)
    }
  }
  return fitText(out.join('\n'), width) + '\n'
}

function fioRow(f: FioRun, footnote: number, showHeap: boolean): (string | number)[] {
  const name = `${f.name}${f.variant === 'tuned' ? ' (reference)' : ''} [${footnote}]`
  const row: (string | number)[] =
    f.iops === undefined || f.gbPerSec === undefined
      ? [name, f.depth, 'failed', '-', '-', '-']
      : [name, f.depth, fmtInt(f.iops), fmtGb(f.gbPerSec), fmtRatio(f.ratioToFsRead), fmtRatio(f.ratioToFio)]
  if (showHeap) row.push('-')
  return row
}

/** The document `--json` writes: the I/O run (absent with `--calls`), the per-call table and the bars. */
export interface BenchJson {
  machine: MachineFacts
  config?: BenchResult['config']
  zcio?: BenchResult['zcio']
  results?: CaseResult[]
  skipped?: SkippedCase[]
  fio?: BenchResult['fio']
  calls?: CallsResult
  bars?: Bar[]
  notes?: string[]
  /** `--bar-scale`, when not 1: the bars' targets are scaled by it. */
  barScale?: number
}

export function toJson(res: BenchResult): BenchJson {
  return {
    machine: res.machine,
    config: res.config,
    zcio: res.zcio,
    results: res.results.map(
      (r): CaseResult => ({
        group: r.group,
        name: r.name,
        depth: r.depth,
        opsPerSec: r.opsPerSec,
        gbPerSec: r.gbPerSec,
        ratioToFsRead: r.ratioToFsRead,
        ratioToFio: r.ratioToFio,
        ...(r.heapDeltaBytes !== undefined ? { heapDeltaBytes: r.heapDeltaBytes } : {}),
        ops: r.ops,
        elapsedSec: r.elapsedSec,
        blockBytes: r.blockBytes,
      }),
    ),
    skipped: res.skipped,
    fio: res.fio,
    notes: res.notes,
  }
}
