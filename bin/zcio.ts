#!/usr/bin/env node
// The `zcio` command: `zcio bench` runs the read benchmark, `zcio bench net`
// the loopback TCP one.

import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { errorCode, errorMessage } from '../benches/common.js'
import type { BenchResult } from '../benches/common.js'
import type { BenchJson } from '../benches/report.js'
import type { NetBenchJson } from '../benches/net-report.js'
import type { Mode } from '../benches/net-common.js'

const NET_GROUPS: readonly Mode[] = ['stream', 'ping-pong', 'pipelined']

const USAGE = `Usage: zcio [bench] [options]
       zcio bench net [options]

Commands:
  bench                  Read benchmark: zcio registered buffers next to
                         fs.read, FileHandle.read, fs.readSync and fio (tuned
                         and with defaults, when installed) on one
                         page-cache-warm file, then the cost of single pool
                         calls, then a pass/miss summary of the library's
                         performance bars (default)
  bench net              Loopback TCP benchmark, sender and receiver in
                         separate processes: a stream in 64 KiB writes (zcio
                         send() and sendZc() of pool buffers into a multishot
                         receive, Node net, iperf3 when installed), 64-byte
                         ping-pong and pipelined 64-byte messages (zcio, Node
                         net); throughput or rate and the CPU of both
                         processes, medians of several runs, ratios and a
                         pass/miss summary of the network bars

Options (bench):
  --size <bytes>         File size: bytes or with a K/M/G/T suffix (1024-based),
                         e.g. 1G, 256M (default 1G, at least 1M)
  --duration <seconds>   Measured seconds per case, after a 0.3 s warm-up
                         (default 3)
  --file <path>          Create the test file at this new path, or in this
                         directory, instead of the OS temp directory; it is
                         deleted at the end
  --json <file>          Also write the results as JSON to <file>
  --quick                Smoke test: --size 64M --duration 1 and a shorter
                         per-call table (explicit --size/--duration still win)
  --calls                Only the per-call table (ns per call of pool and
                         ring methods): no file, no fio

Options (bench net):
  --size <bytes>         Bytes per stream run, with a K/M/G/T suffix as above
                         (default 4G, at least 1M; rounded up to 64 KiB)
  --runs <n>             Runs per case, each in fresh processes after a
                         warm-up connection; medians are reported (default 3)
  --round-trips <n>      Ping-pong round trips per run (default 50000)
  --messages <n>         Pipelined messages per run (default 1000000)
  --only <groups>        Only these groups, comma-separated: stream,
                         ping-pong, pipelined (default: all)
  --json <file>          Also write every run, the medians and the bars as
                         JSON to <file>
  --quick                Smoke test, well under a minute: --size 256M --runs 1
                         --round-trips 5000 --messages 200000 (explicit
                         options still win)

  -h, --help             Show this help
  --version              Print zcio's version

Progress goes to stderr, the result tables to stdout.
`

const UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }

function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text)
  if (!m) return NaN
  return Math.floor(Number(m[1]) * UNITS[m[2].toLowerCase()])
}

class UsageError extends Error {}

interface CliOptions {
  command: 'bench' | 'net'
  help: boolean
  version: boolean
  size: number | undefined
  durationSec: number | undefined
  file: string | undefined
  json: string | undefined
  quick: boolean
  callsOnly: boolean
  runs: number | undefined
  roundTrips: number | undefined
  messages: number | undefined
  only: Mode[] | undefined
}

const VALUE_OPTIONS = ['--size', '--duration', '--file', '--json', '--runs', '--round-trips', '--messages', '--only']
const READ_ONLY = ['--duration', '--file', '--calls']
const NET_ONLY = ['--runs', '--round-trips', '--messages', '--only']

function parseCount(name: string, value: string, min: number, max: number): number {
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${name}: expected a whole number from ${min} to ${max}; got ${JSON.stringify(value)}`)
  }
  return n
}

function parseArgs(argv: readonly string[]): CliOptions {
  const opts: CliOptions = {
    command: 'bench',
    help: false,
    version: false,
    size: undefined,
    durationSec: undefined,
    file: undefined,
    json: undefined,
    quick: false,
    callsOnly: false,
    runs: undefined,
    roundTrips: undefined,
    messages: undefined,
    only: undefined,
  }
  const seen = new Set<string>()
  let commandSeen = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '-h' || arg === '--help') {
      opts.help = true
      continue
    }
    if (arg === '--version') {
      opts.version = true
      continue
    }
    if (!arg.startsWith('-')) {
      if (arg === 'net' && commandSeen && opts.command === 'bench') {
        opts.command = 'net'
        continue
      }
      if (commandSeen) throw new UsageError(`unexpected argument: ${arg}`)
      if (arg === 'help') opts.help = true
      else if (arg !== 'bench') throw new UsageError(`unknown command: ${arg}`)
      commandSeen = true
      continue
    }
    const eq = arg.indexOf('=')
    const name = eq === -1 ? arg : arg.slice(0, eq)
    seen.add(name)
    const takesValue = VALUE_OPTIONS.includes(name)
    if (!takesValue) {
      if (name === '--quick' && eq === -1) {
        opts.quick = true
        continue
      }
      if (name === '--calls' && eq === -1) {
        opts.callsOnly = true
        continue
      }
      throw new UsageError(`unknown option: ${arg}`)
    }
    let value: string
    if (eq !== -1) value = arg.slice(eq + 1)
    else {
      if (i + 1 >= argv.length) throw new UsageError(`${name} needs a value`)
      value = argv[++i]
    }
    if (value === '') throw new UsageError(`${name} needs a value`)
    if (name === '--size') {
      const size = parseSize(value)
      if (!Number.isSafeInteger(size) || size < 1024 * 1024) {
        throw new UsageError(`--size: expected bytes or a size like 256M or 1G, at least 1M; got ${JSON.stringify(value)}`)
      }
      opts.size = size
    } else if (name === '--duration') {
      const d = /^\s*\d+(\.\d+)?\s*$|^\s*\.\d+\s*$/.test(value) ? Number(value) : NaN
      if (!(d > 0) || d > 3600) throw new UsageError(`--duration: expected seconds in (0, 3600]; got ${JSON.stringify(value)}`)
      opts.durationSec = d
    } else if (name === '--file') {
      opts.file = value
    } else if (name === '--runs') {
      opts.runs = parseCount(name, value, 1, 100)
    } else if (name === '--round-trips') {
      opts.roundTrips = parseCount(name, value, 1, 1e9)
    } else if (name === '--messages') {
      opts.messages = parseCount(name, value, 1, 1e10)
    } else if (name === '--only') {
      const groups = value.split(',').map((g) => g.trim())
      const bad = groups.find((g) => !(NET_GROUPS as readonly string[]).includes(g))
      if (bad !== undefined || groups.length === 0) {
        throw new UsageError(`--only: expected groups among ${NET_GROUPS.join(', ')}; got ${JSON.stringify(value)}`)
      }
      opts.only = groups as Mode[]
    } else {
      opts.json = value
    }
  }
  const misplaced = [...seen].find((o) => (opts.command === 'net' ? READ_ONLY : NET_ONLY).includes(o))
  if (misplaced && !opts.help) {
    throw new UsageError(`${misplaced} is an option of ${opts.command === 'net' ? "'zcio bench'" : "'zcio bench net'"}`)
  }
  if (opts.quick && opts.command === 'net') {
    opts.size ??= 256 * 1024 * 1024
    opts.runs ??= 1
    opts.roundTrips ??= 5000
    opts.messages ??= 200_000
  } else if (opts.quick) {
    if (opts.size === undefined) opts.size = 64 * 1024 * 1024
    if (opts.durationSec === undefined) opts.durationSec = 1
  }
  if (opts.file !== undefined) checkFileOption(opts.file)
  if (opts.json !== undefined) {
    const dir = path.dirname(path.resolve(opts.json))
    if (!fs.existsSync(dir)) throw new UsageError(`--json ${opts.json}: directory ${dir} does not exist`)
  }
  return opts
}

function checkFileOption(file: string): void {
  let st: fs.Stats | null = null
  try {
    st = fs.statSync(file)
  } catch (e) {
    if (errorCode(e) !== 'ENOENT') throw new UsageError(`--file ${file}: ${errorMessage(e)}`)
  }
  if (st && !st.isDirectory()) {
    throw new UsageError(`--file ${file} already exists; give a new path (it is created and deleted) or a directory`)
  }
  if (!st && !fs.existsSync(path.dirname(path.resolve(file)))) {
    throw new UsageError(`--file ${file}: directory ${path.dirname(path.resolve(file))} does not exist`)
  }
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
async function benchNet(opts: CliOptions): Promise<number> {
  const { runNet } = await import('../benches/net-bench.js')
  const { netBars, netReport } = await import('../benches/net-report.js')
  let doc: NetBenchJson
  try {
    const res = await runNet({ size: opts.size, runs: opts.runs, roundTrips: opts.roundTrips, messages: opts.messages, only: opts.only })
    const list = netBars(res)
    process.stdout.write(netReport(res, list))
    doc = { ...res, bars: list }
  } catch (e) {
    process.stderr.write(`zcio bench net: ${errorMessage(e)}\n`)
    return 1
  }
  return writeJson(opts.json, doc)
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

/** Runs the command line; resolves with the exit code, or null when a child process carries on. */
async function main(argv: readonly string[]): Promise<number | null> {
  let opts: CliOptions
  try {
    opts = parseArgs(argv)
  } catch (e) {
    if (!(e instanceof UsageError)) throw e
    process.stderr.write(`zcio: ${e.message}\nTry 'zcio --help'.\n`)
    return 2
  }
  if (opts.help) {
    process.stdout.write(USAGE)
    return 0
  }
  if (opts.version) {
    // dist/bin/zcio.js: the package's package.json is two folders up.
    const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }
    process.stdout.write(`${pkg.version}\n`)
    return 0
  }
  if (opts.command === 'net') return benchNet(opts)
  if (typeof globalThis.gc !== 'function' && process.env.ZCIO_BENCH_REEXEC !== '1') {
    reexecWithGc(argv)
    return null
  }

  const { machineFacts, run } = await import('../benches/fs-bench.js')
  const { report, toJson } = await import('../benches/report.js')
  const { reportCalls, runCalls } = await import('../benches/calls.js')
  const { bars, reportBars } = await import('../benches/bars.js')
  const { loadZcio } = await import('../benches/common.js')
  let doc: BenchJson
  try {
    let res: BenchResult | null = null
    if (!opts.callsOnly) {
      res = await run({ size: opts.size, durationSec: opts.durationSec, file: opts.file })
      process.stdout.write(report(res))
    }
    const zcio = await loadZcio()
    if (!res) {
      const m = machineFacts(zcio)
      process.stdout.write(`zcio bench --calls: ${m.cpus} CPU x ${m.cpuModel} | kernel ${m.kernelRelease} | Node ${m.node}\n`)
    }
    const calls = await runCalls(opts.quick ? { callsPerBatch: 200_000, batches: 5, maxBatchMs: 60 } : {}, zcio)
    process.stdout.write(reportCalls(calls))
    if (res) {
      const list = bars(res)
      process.stdout.write(reportBars(list, calls))
      doc = { ...toJson(res), calls, bars: list }
    } else {
      doc = { machine: machineFacts(zcio), calls }
    }
  } catch (e) {
    process.stderr.write(`zcio bench: ${errorMessage(e)}\n`)
    return errorCode(e) === 'ERR_ZCIO_BENCH_USAGE' ? 2 : 1
  }
  return writeJson(opts.json, doc)
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
