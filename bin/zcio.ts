#!/usr/bin/env node
// The `zcio` command: `zcio bench` runs the read benchmark, `zcio bench net`
// the loopback TCP one; bare `zcio` shows the help.

import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { errorCode, errorMessage } from '../benches/common.js'
import type { BenchResult } from '../benches/common.js'
import type { BenchJson } from '../benches/report.js'
import type { NetBenchJson } from '../benches/net-report.js'
import type { ApiGroup, Mode } from '../benches/net-common.js'
import type { Verdict } from '../benches/check.js'
import { fitText, outputWidth } from '../benches/layout.js'
import { UsageError, parseArgs } from './args.js'
import type { Action, BenchOptions } from './args.js'
import { USAGE } from './usage.js'

/** The version in the package's own package.json (two levels up from dist/bin/). */
function version(): string {
  const file = path.join(__dirname, '..', '..', 'package.json')
  const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: unknown }
  if (typeof pkg.version !== 'string') throw new Error(`${file} has no version`)
  return pkg.version
}

// Heap deltas want `global.gc`: run again under --expose-gc, once.
function reexecWithGc(argv: readonly string[]): void {
  const script = process.argv[1]
  const child = spawn(process.execPath, [...process.execArgv, '--expose-gc', script, ...argv], {
    stdio: 'inherit',
    env: { ...process.env, ZCIO_BENCH_REEXEC: '1' },
  })
  const forward = (signal: NodeJS.Signals): void => {
    child.kill(signal)
  }
  process.on('SIGINT', forward)
  process.on('SIGTERM', forward)
  child.on('error', (e) => {
    process.stderr.write(`zcio: cannot start ${process.execPath}: ${e.message}\n`)
    process.exit(1)
  })
  child.on('exit', (code, signal) => {
    process.removeListener('SIGINT', forward)
    process.removeListener('SIGTERM', forward)
    if (signal) process.kill(process.pid, signal)
    else process.exit(code == null ? 1 : code)
  })
}

/** `zcio bench net`: no heap deltas, so no re-run under --expose-gc. */
async function benchNet(opts: BenchOptions): Promise<number> {
  const { runNet, GROUPS } = await import('../benches/net-bench.js')
  const { runApi, apiBars } = await import('../benches/net-api-bench.js')
  const { API_GROUPS } = await import('../benches/net-common.js')
  const { netBars, netReport } = await import('../benches/net-report.js')
  const { netVerdicts } = await import('../benches/check.js')
  const width = outputWidth()
  let doc: NetBenchJson
  let verdicts: Verdict[]
  try {
    const core = (opts.only ?? GROUPS).filter((g): g is Mode => (GROUPS as readonly string[]).includes(g))
    const apiGroups = (opts.only ?? API_GROUPS).filter((g): g is ApiGroup => (API_GROUPS as readonly string[]).includes(g))
    const res = await runNet({ size: opts.size, runs: opts.runs, roundTrips: opts.roundTrips, messages: opts.messages, only: core })
    const api = apiGroups.length > 0 ? await runApi({ groups: apiGroups, runs: opts.runs, seconds: opts.quick ? 0.5 : 3 }) : undefined
    const list = [...netBars(res, opts.barScale), ...(api ? apiBars(api, opts.barScale) : [])]
    if (opts.barScale !== 1) res.notes.push(scaleNote(opts.barScale))
    process.stdout.write(netReport(res, list, width, api))
    doc = { ...res, bars: list, ...(api ? { api } : {}), ...(opts.barScale !== 1 ? { barScale: opts.barScale } : {}) }
    verdicts = netVerdicts(list)
  } catch (e) {
    process.stderr.write(`zcio bench net: ${errorMessage(e)}\n`)
    return 1
  }
  const written = writeJson(opts.json, doc)
  return written || (opts.check ? await checkExit(verdicts, width) : 0)
}

function scaleNote(scale: number): string {
  return `bars held ${scale}x as strict (--bar-scale ${scale}): the targets below are scaled, not the library's own`
}

async function checkExit(verdicts: readonly Verdict[], width: number): Promise<number> {
  const { check } = await import('../benches/check.js')
  const res = check(verdicts, width)
  process.stdout.write(res.text)
  return res.exitCode
}

function writeJson(file: string | undefined, doc: unknown): number {
  if (file === undefined) return 0
  try {
    fs.writeFileSync(file, JSON.stringify(doc, null, 2) + '\n')
  } catch (e) {
    process.stderr.write(`zcio bench: cannot write ${file}: ${errorMessage(e)}\n`)
    return 1
  }
  process.stderr.write(`results written to ${file}\n`)
  return 0
}

/** `zcio bench`: the read cases, the per-call table and the bars. */
async function bench(argv: readonly string[], opts: BenchOptions): Promise<number | null> {
  if (typeof globalThis.gc !== 'function' && process.env.ZCIO_BENCH_REEXEC !== '1') {
    reexecWithGc(argv)
    return null
  }
  const { machineFacts, run } = await import('../benches/fs-bench.js')
  const { report, toJson } = await import('../benches/report.js')
  const { reportCalls, runCalls } = await import('../benches/calls.js')
  const { bars, reportBars } = await import('../benches/bars.js')
  const { barVerdicts, callVerdicts } = await import('../benches/check.js')
  const { loadZcio } = await import('../benches/common.js')
  const width = outputWidth()
  let doc: BenchJson
  const verdicts: Verdict[] = []
  try {
    let res: BenchResult | null = null
    if (!opts.callsOnly) {
      res = await run({ size: opts.size, durationSec: opts.durationSec, file: opts.file })
      if (opts.barScale !== 1) res.notes.push(scaleNote(opts.barScale))
      process.stdout.write(report(res, width))
    }
    const zcio = await loadZcio()
    if (!res) {
      const m = machineFacts(zcio)
      const head = `zcio bench --calls: ${m.cpus} CPU x ${m.cpuModel} | kernel ${m.kernelRelease} | Node ${m.node}`
      process.stdout.write(fitText(head + (opts.barScale !== 1 ? `\nnote: ${scaleNote(opts.barScale)}` : ''), width) + '\n')
    }
    const callOpts = opts.quick ? { callsPerBatch: 200_000, batches: 5, maxBatchMs: 60 } : {}
    const calls = await runCalls({ ...callOpts, targetScale: opts.barScale }, zcio)
    process.stdout.write(reportCalls(calls, width))
    if (res) {
      const list = bars(res, opts.barScale)
      process.stdout.write(reportBars(list, calls, width))
      doc = { ...toJson(res), calls, bars: list }
      verdicts.push(...barVerdicts(list))
    } else {
      doc = { machine: machineFacts(zcio), calls }
    }
    verdicts.push(...callVerdicts(calls))
  } catch (e) {
    process.stderr.write(`zcio bench: ${errorMessage(e)}\n`)
    return errorCode(e) === 'ERR_ZCIO_BENCH_USAGE' ? 2 : 1
  }
  if (opts.barScale !== 1) doc.barScale = opts.barScale
  const written = writeJson(opts.json, doc)
  return written || (opts.check ? await checkExit(verdicts, width) : 0)
}

/** Runs the command line; resolves with the exit code, or null when a child process carries on. */
async function main(argv: readonly string[]): Promise<number | null> {
  let action: Action
  try {
    action = parseArgs(argv)
  } catch (e) {
    if (!(e instanceof UsageError)) throw e
    process.stderr.write(`zcio: ${e.message}\nTry 'zcio --help'.\n`)
    return 2
  }
  if (action.kind === 'help') {
    process.stdout.write(USAGE)
    return 0
  }
  if (action.kind === 'version') {
    process.stdout.write(version() + '\n')
    return 0
  }
  // Read by every Ring this process and its peer processes make, before
  // zcio is loaded.
  if (action.opts.backend !== undefined) process.env.ZCIO_BACKEND = action.opts.backend
  return action.opts.command === 'net' ? benchNet(action.opts) : bench(argv, action.opts)
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== null) process.exitCode = code
  },
  (e: unknown) => {
    process.stderr.write(`zcio: ${e instanceof Error && e.stack ? e.stack : String(e)}\n`)
    process.exitCode = 1
  },
)
