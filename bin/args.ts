// The command line of `zcio`: what to do, and the options of the benches.
// Bad input throws a UsageError, whose message names the culprit and says
// what to give instead (the caller adds a pointer to --help, exit code 2).

import * as fs from 'node:fs'
import * as path from 'node:path'
import { errorCode, errorMessage } from '../benches/common.js'
import type { ApiGroup, Mode } from '../benches/net-common.js'

const NET_GROUPS: readonly (Mode | ApiGroup)[] = ['stream', 'ping-pong', 'pipelined', 'http', 'echo', 'churn', 'net-ping-pong']
const COMMANDS = ['bench', 'help']

export class UsageError extends Error {}

export interface BenchOptions {
  command: 'bench' | 'net'
  size: number | undefined
  durationSec: number | undefined
  file: string | undefined
  json: string | undefined
  quick: boolean
  callsOnly: boolean
  check: boolean
  /** `--bar-scale`: how many times as strict the bars are held (1: as they are). */
  barScale: number
  runs: number | undefined
  roundTrips: number | undefined
  messages: number | undefined
  only: (Mode | ApiGroup)[] | undefined
  /** `--backend`: the backend of zcio's rings (as `ZCIO_BACKEND`), or undefined for the default. */
  backend: 'auto' | 'io_uring' | 'epoll' | undefined
}

export type Action = { kind: 'help' } | { kind: 'version' } | { kind: 'bench'; opts: BenchOptions }

const VALUE_OPTIONS = ['--size', '--duration', '--file', '--json', '--runs', '--round-trips', '--messages', '--only', '--bar-scale', '--backend']
const FLAGS = ['--quick', '--calls', '--check']
const READ_ONLY = ['--duration', '--file', '--calls']
const NET_ONLY = ['--runs', '--round-trips', '--messages', '--only']
const KNOWN = [...VALUE_OPTIONS, ...FLAGS, '--help', '--version']

const UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }

function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text)
  if (!m) return NaN
  return Math.floor(Number(m[1]) * UNITS[m[2].toLowerCase()])
}

function parseCount(name: string, value: string, min: number, max: number): number {
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`${name}: expected a whole number from ${min} to ${max}; got ${JSON.stringify(value)}`)
  }
  return n
}

function parseNumber(value: string): number {
  return /^\s*(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?\s*$/.test(value) ? Number(value) : NaN
}

/** Edit distance counting a swap of neighbours as one edit, for "did you mean" hints. */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i ? (j ? 0 : i) : j)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1)
    }
  }
  return d[a.length][b.length]
}

function suggest(word: string, among: readonly string[]): string {
  const best = among.map((w) => ({ w, d: distance(word, w) })).sort((x, y) => x.d - y.d)[0]
  return best && best.d <= Math.max(1, Math.floor(best.w.length / 3)) ? ` (did you mean ${best.w}?)` : ''
}

/** What the command line asks for; throws a UsageError on bad input. */
export function parseArgs(argv: readonly string[]): Action {
  // Bare `zcio` shows the help: a benchmark only runs when asked for.
  if (argv.length === 0) return { kind: 'help' }
  const opts: BenchOptions = {
    command: 'bench',
    size: undefined,
    durationSec: undefined,
    file: undefined,
    json: undefined,
    quick: false,
    callsOnly: false,
    check: false,
    barScale: 1,
    runs: undefined,
    roundTrips: undefined,
    messages: undefined,
    only: undefined,
    backend: undefined,
  }
  const seen = new Set<string>()
  let help = false
  let version = false
  let command: string | null = null
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '-h' || arg === '--help') {
      help = true
      continue
    }
    if (arg === '-v' || arg === '--version') {
      version = true
      continue
    }
    if (!arg.startsWith('-') || arg === '-') {
      if (command === 'help') continue // `zcio help bench`: the one help covers it
      if (arg === 'net' && command === 'bench' && opts.command === 'bench') {
        opts.command = 'net'
        continue
      }
      if (command !== null) throw new UsageError(`unexpected argument: ${arg}${command === 'bench' ? suggest(arg, ['net']) : ''}`)
      if (!COMMANDS.includes(arg)) throw new UsageError(`unknown command: ${arg}${suggest(arg, COMMANDS)}; the commands are bench and bench net`)
      if (arg === 'help') help = true
      command = arg
      continue
    }
    const eq = arg.indexOf('=')
    const name = eq === -1 ? arg : arg.slice(0, eq)
    seen.add(name)
    if (!VALUE_OPTIONS.includes(name)) {
      if (FLAGS.includes(name) && eq === -1) {
        if (name === '--quick') opts.quick = true
        else if (name === '--calls') opts.callsOnly = true
        else opts.check = true
        continue
      }
      if (FLAGS.includes(name)) throw new UsageError(`${name} takes no value; got ${JSON.stringify(arg)}`)
      throw new UsageError(`unknown option: ${arg}${suggest(name, KNOWN)}`)
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
      const d = parseNumber(value)
      if (!(d > 0) || d > 3600) throw new UsageError(`--duration: expected seconds in (0, 3600]; got ${JSON.stringify(value)}`)
      opts.durationSec = d
    } else if (name === '--bar-scale') {
      const k = parseNumber(value)
      if (!(k > 0) || k > 1e6) throw new UsageError(`--bar-scale: expected a factor above 0, up to 1e6 (1: the bars as they are); got ${JSON.stringify(value)}`)
      opts.barScale = k
    } else if (name === '--file') {
      opts.file = value
    } else if (name === '--runs') {
      opts.runs = parseCount(name, value, 1, 100)
    } else if (name === '--round-trips') {
      opts.roundTrips = parseCount(name, value, 1, 1e9)
    } else if (name === '--messages') {
      opts.messages = parseCount(name, value, 1, 1e10)
    } else if (name === '--backend') {
      if (value !== 'auto' && value !== 'io_uring' && value !== 'epoll') {
        throw new UsageError(`--backend: expected auto, io_uring or epoll; got ${JSON.stringify(value)}`)
      }
      opts.backend = value
    } else if (name === '--only') {
      const groups = value.split(',').map((g) => g.trim())
      const bad = groups.find((g) => !(NET_GROUPS as readonly string[]).includes(g))
      if (bad !== undefined || groups.length === 0) {
        throw new UsageError(`--only: expected groups among ${NET_GROUPS.join(', ')}; got ${JSON.stringify(value)}`)
      }
      opts.only = groups as (Mode | ApiGroup)[]
    } else {
      opts.json = value
    }
  }
  if (help) return { kind: 'help' }
  if (version) return { kind: 'version' }
  if (command === null) {
    const first = argv.find((a) => a.startsWith('-')) ?? argv[0]
    throw new UsageError(`${first} is an option of a command, and no command was given: 'zcio bench ${argv.join(' ')}' runs the read benchmark`)
  }
  const misplaced = [...seen].find((o) => (opts.command === 'net' ? READ_ONLY : NET_ONLY).includes(o))
  if (misplaced) {
    throw new UsageError(`${misplaced} is an option of ${opts.command === 'net' ? "'zcio bench'" : "'zcio bench net'"}`)
  }
  if (opts.quick && opts.command === 'net') {
    opts.size ??= 256 * 1024 * 1024
    opts.runs ??= 1
    opts.roundTrips ??= 5000
    opts.messages ??= 200_000
  } else if (opts.quick) {
    opts.size ??= 64 * 1024 * 1024
    opts.durationSec ??= 1
  }
  if (opts.file !== undefined) checkFileOption(opts.file)
  if (opts.json !== undefined) {
    const dir = path.dirname(path.resolve(opts.json))
    if (!fs.existsSync(dir)) throw new UsageError(`--json ${opts.json}: directory ${dir} does not exist`)
  }
  return { kind: 'bench', opts }
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
