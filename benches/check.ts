// `--check`: the verdict over every bar of a run's summary (the read or
// network bars, and the per-call targets), which decides the exit code.

import type { Bar } from './bars.js'
import { fmtMeasured, fmtTarget } from './bars.js'
import type { CallsResult } from './calls.js'
import { wrapLine } from './layout.js'
import type { NetBar } from './net-report.js'
import { fmtNetMeasured, fmtNetTarget } from './net-report.js'
import { fmtTargetNs } from './format.js'

/** One bar as `--check` sees it. */
export interface Verdict {
  bar: string
  measured: string
  target: string
  /** Null: not measured on this machine (n/a), neither a pass nor a miss. */
  pass: boolean | null
}

export function barVerdicts(list: readonly Bar[]): Verdict[] {
  return list.map((b) => ({ bar: b.bar, measured: fmtMeasured(b), target: fmtTarget(b), pass: b.pass }))
}

export function netVerdicts(list: readonly NetBar[]): Verdict[] {
  return list.map((b) => ({ bar: b.bar, measured: fmtNetMeasured(b), target: fmtNetTarget(b), pass: b.pass }))
}

/** The per-call targets, one verdict per targeted call (the reference rows have none). */
export function callVerdicts(calls: CallsResult): Verdict[] {
  return calls.results
    .filter((r) => r.targetNs !== null)
    .map((r) => ({ bar: `per call: ${r.name}`, measured: `${r.nsPerCall.toFixed(1)} ns`, target: `${fmtTargetNs(r.targetNs)} ns`, pass: r.pass }))
}

export interface CheckResult {
  /** The lines to print after the summary. */
  text: string
  /** 1 when a bar missed, or when none could be measured (nothing vouches for the run); else 0. */
  exitCode: 0 | 1
}

/** The verdict of `--check`: which bars missed, or that none did; n/a bars are counted, not failed (unless all are). */
export function check(verdicts: readonly Verdict[], width: number): CheckResult {
  const missed = verdicts.filter((v) => v.pass === false)
  const passed = verdicts.filter((v) => v.pass === true).length
  const na = verdicts.length - missed.length - passed
  const naNote = na ? `; ${na} not measured here (n/a)` : ''
  const lines: string[] = ['']
  if (missed.length) {
    lines.push(`check: MISS: ${missed.length} of ${missed.length + passed} measured bars missed${naNote}:`)
    for (const v of missed) lines.push(...wrapLine(`  ${v.bar}: ${v.measured}, needs ${v.target}`, width))
  } else if (passed) {
    lines.push(`check: pass: all ${passed} measured bars met${naNote}`)
  } else {
    lines.push(`check: MISS: no bar could be measured here, so none is met${naNote}; see the notes above`)
  }
  return { text: lines.flatMap((l) => wrapLine(l, width)).join('\n') + '\n', exitCode: missed.length || !passed ? 1 : 0 }
}
