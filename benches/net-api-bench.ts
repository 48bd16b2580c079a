// The `zcio bench net` groups of `zcio.net`: code written for `node:net`
// run once on `zcio.net` and once on `node:net`, server and client in
// separate processes (net-api-peer.ts), runs alternating between the two:
// HTTP keep-alive small responses through wrk (when installed), pipelined
// 64 B echo over 16 connections, connection churn (64 loops of connect, 4
// bytes each way, close) and 64 B ping-pong. Medians of the runs. The echo
// group also runs ferrings' echo server as a reference when there is a copy
// (net-ferrings.ts): a row of its table, no bar.

import { fork, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import * as path from 'node:path'
import { fmtInt, fmtRatio } from './format.js'
import { type Align, table, wrapLine } from './layout.js'
import { API_CHURN_PARALLEL, API_ECHO_CONNECTIONS, API_ECHO_WINDOW, API_HTTP_CONNECTIONS } from './net-common.js'
import type { ApiGroup, ApiPeerMessage, ApiPeerSpec, NetBar } from './net-common.js'
import { FERRINGS_ENV, FERRINGS_HOWTO, FERRINGS_NAME, findFerrings } from './net-ferrings.js'
import type { FerringsCopy } from './net-ferrings.js'

const PEER = path.join(__dirname, 'net-api-peer.js')
const IMPLS = ['zcio', 'node'] as const
type Impl = (typeof IMPLS)[number]
export const IMPL_NAMES: Record<Impl, string> = { zcio: 'zcio.net', node: 'node:net' }
/** The modules of the rows: the two compared, and ferrings as a reference (echo only). */
export type ApiImpl = Impl | 'ferrings'

/** What each group measures, and whether more is better. */
const UNIT: Record<ApiGroup, { unit: string; higherIsBetter: boolean; client: string }> = {
  http: { unit: 'req/s', higherIsBetter: true, client: `wrk -t1 -c${API_HTTP_CONNECTIONS} --latency, Node http server fed by the module` },
  echo: { unit: 'msgs/s', higherIsBetter: true, client: `${API_ECHO_CONNECTIONS} connections x ${API_ECHO_WINDOW} messages of 64 B in flight, echo server; both on the module` },
  churn: { unit: 'conns/s', higherIsBetter: true, client: `${API_CHURN_PARALLEL} loops of connect, 4 B each way, close; both on the module` },
  'net-ping-pong': { unit: 'us/round trip', higherIsBetter: false, client: 'one connection, 64 B each way; both on the module' },
}

export interface ApiRun {
  value: number
  /** wrk's median latency, ms (http only). */
  p50Ms?: number
}

export interface ApiCaseResult {
  group: ApiGroup
  impl: ApiImpl
  name: string
  runs: ApiRun[]
  value: number
  p50Ms: number | null
}

export interface ApiBenchResult {
  groups: ApiGroup[]
  seconds: number
  runs: number
  wrk: string | null
  results: ApiCaseResult[]
  skipped: { group: ApiGroup; reason: string }[]
  /** The copy of ferrings the echo group ran, or null (`notes` says why). */
  ferrings: FerringsCopy | null
  /** Lines printed under a group's table; `command`, a shell command after the note. */
  notes: { group: ApiGroup; note: string; command?: string }[]
}

export interface ApiRunOptions {
  groups: readonly ApiGroup[]
  runs?: number
  /** Measured seconds per run (default 3). */
  seconds?: number
  progressStream?: NodeJS.WritableStream
}

function forkPeer(spec: ApiPeerSpec): { child: ChildProcess; next: (type: ApiPeerMessage['type'], ms: number) => Promise<ApiPeerMessage> } {
  const child = fork(PEER, [JSON.stringify(spec)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + String(d)).slice(-2000)))
  const inbox: ApiPeerMessage[] = []
  let wake: (() => void) | undefined
  let gone: Error | undefined
  child.on('message', (m: ApiPeerMessage) => {
    inbox.push(m)
    wake?.()
  })
  child.on('exit', (code) => {
    gone = new Error(`${spec.role} (${spec.impl}, ${spec.group}) exited with ${code}${stderr ? `: ${stderr.trim()}` : ''}`)
    wake?.()
  })
  const next = async (type: ApiPeerMessage['type'], ms: number): Promise<ApiPeerMessage> => {
    const deadline = Date.now() + ms
    for (;;) {
      const m = inbox.shift()
      if (m) {
        if (m.type === 'error') throw new Error(`${spec.role} (${spec.impl}, ${spec.group}): ${m.message}`)
        if (m.type !== type) throw new Error(`expected '${type}', got '${m.type}'`)
        return m
      }
      if (gone) throw gone
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`${spec.role} (${spec.impl}, ${spec.group}): no '${type}' within ${ms} ms`)
      await new Promise<void>((r) => {
        const t = setTimeout(r, left)
        wake = () => {
          clearTimeout(t)
          wake = undefined
          r()
        }
      })
    }
  }
  return { child, next }
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once('exit', () => resolve())
    // A peer exiting by itself meanwhile closes the channel: the send then
    // fails (EPIPE) into this callback, not as an 'error' event nobody hears.
    if (child.connected) child.send({ type: 'stop' }, (err) => err && child.kill('SIGKILL'))
    else child.kill('SIGKILL')
    setTimeout(() => child.kill('SIGKILL'), 3000).unref()
  })
}

/** `wrk`'s version line, or null when it is not installed. */
function wrkVersion(): Promise<string | null> {
  return new Promise((resolve) => {
    const p = spawn('wrk', ['-v'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    p.stdout.on('data', (d: Buffer) => (out += String(d)))
    p.stderr.on('data', (d: Buffer) => (out += String(d)))
    p.on('error', () => resolve(null))
    p.on('close', () => resolve(/wrk \S+/.exec(out)?.[0] ?? null))
  })
}

function runWrk(port: number, seconds: number): Promise<ApiRun> {
  return new Promise((resolve, reject) => {
    const args = ['-t1', `-c${API_HTTP_CONNECTIONS}`, `-d${Math.max(1, Math.round(seconds))}s`, '--latency', `http://127.0.0.1:${port}/`]
    const p = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    p.stdout.on('data', (d: Buffer) => (out += String(d)))
    p.on('error', reject)
    p.on('close', (code) => {
      const rate = /Requests\/sec:\s+([\d.]+)/.exec(out)
      const p50 = /50%\s+([\d.]+)(us|ms|s)\b/.exec(out)
      if (code !== 0 || !rate || !p50) return reject(new Error(`wrk ${args.join(' ')} failed (${code}): ${out.slice(-500)}`))
      const scale = { us: 1e-3, ms: 1, s: 1e3 }[p50[2] as 'us' | 'ms' | 's']
      resolve({ value: Number(rate[1]), p50Ms: Number(p50[1]) * scale })
    })
  })
}

/** One run of `impl`'s server and client; ferrings' server (echo only) is loaded from `ferrings` and driven by node:net's client. */
async function oneRun(group: ApiGroup, impl: ApiImpl, seconds: number, ferrings?: FerringsCopy): Promise<ApiRun> {
  const srv = forkPeer(impl === 'ferrings' ? { role: 'server', impl, group: 'echo', dir: ferrings!.dir } : { role: 'server', impl, group })
  try {
    const { port } = (await srv.next('listening', 15_000)) as { port: number }
    if (group === 'http') {
      await runWrk(port, 1) // warm-up
      return await runWrk(port, seconds)
    }
    const cli = forkPeer({ role: 'client', impl: impl === 'ferrings' ? 'node' : impl, group, port, seconds, warm: 0.3 })
    const r = (await cli.next('result', (seconds + 20) * 1000)) as { ops: number; seconds: number }
    await stop(cli.child)
    const perSec = r.ops / r.seconds
    return { value: group === 'net-ping-pong' ? 1e6 / perSec : perSec }
  } finally {
    await stop(srv.child)
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** Runs the groups, `runs` rounds over zcio.net and node:net each. */
export async function runApi(opts: ApiRunOptions): Promise<ApiBenchResult> {
  const runs = opts.runs ?? 3
  const seconds = opts.seconds ?? 3
  const out = opts.progressStream ?? process.stderr
  const wrk = await wrkVersion()
  const res: ApiBenchResult = { groups: [...opts.groups], seconds, runs, wrk, results: [], skipped: [], ferrings: null, notes: [] }
  let ferrings: FerringsCopy | undefined
  if (opts.groups.includes('echo')) {
    const found = findFerrings()
    if ('reason' in found) res.notes.push({ group: 'echo', note: `ferrings: ${found.reason}`, command: FERRINGS_HOWTO })
    else ferrings = found
  }
  for (const group of opts.groups) {
    if (group === 'http' && wrk === null) {
      res.skipped.push({ group, reason: 'wrk is not installed (Debian: apt-get install wrk)' })
      continue
    }
    const got: Record<Impl, ApiRun[]> = { zcio: [], node: [] }
    // ferrings' runs alternate with the others'; its first failure ends them with a note, not the bench.
    const ref = group === 'echo' ? ferrings : undefined
    const refRuns: ApiRun[] = []
    let refFailed = false
    for (let i = 0; i < runs; i++) {
      for (const impl of IMPLS) {
        out.write(`[${group}] ${IMPL_NAMES[impl]} run ${i + 1}/${runs} ...\n`)
        got[impl].push(await oneRun(group, impl, seconds))
      }
      if (!ref || refFailed) continue
      out.write(`[${group}] ${FERRINGS_NAME} run ${i + 1}/${runs} ...\n`)
      try {
        refRuns.push(await oneRun(group, 'ferrings', seconds, ref))
      } catch (e) {
        refFailed = true
        const why = (e instanceof Error ? e.message : String(e)).split('\n')[0]
        res.notes.push({ group, note: `ferrings ${ref.version} (${ref.dir}) failed, no row: ${why}; a working copy:`, command: FERRINGS_HOWTO })
      }
    }
    const rows: [ApiImpl, string, ApiRun[]][] = IMPLS.map((impl) => [impl, IMPL_NAMES[impl], got[impl]])
    if (ref && !refFailed) {
      rows.push(['ferrings', FERRINGS_NAME, refRuns])
      res.ferrings = ref
      const from = process.env[FERRINGS_ENV] ? FERRINGS_ENV : 'the ferrings package of the current directory'
      res.notes.push({ group, note: `${FERRINGS_NAME}: ferrings ${ref.version} from ${ref.dir} (${from}), its createTcpServer with defaults; a reference, no bar` })
    }
    for (const [impl, name, r] of rows) {
      const p50s = r.flatMap((x) => (x.p50Ms === undefined ? [] : [x.p50Ms]))
      res.results.push({ group, impl, name, runs: r, value: median(r.map((x) => x.value)), p50Ms: p50s.length ? median(p50s) : null })
    }
  }
  return res
}

function ratioBar(res: ApiBenchResult, group: ApiGroup, text: string, kind: 'min' | 'max', target: number, pick: (r: ApiCaseResult) => number | null, detail: string): NetBar {
  const z = res.results.find((r) => r.group === group && r.impl === 'zcio')
  const n = res.results.find((r) => r.group === group && r.impl === 'node')
  const a = z ? pick(z) : null
  const b = n ? pick(n) : null
  const measured = a !== null && b !== null && b > 0 ? a / b : null
  const pass = measured === null ? null : kind === 'min' ? measured >= target : measured <= target
  const why = res.skipped.find((s) => s.group === group)?.reason
  return { group, bar: text, measured, target, kind, pass, detail: why ?? detail }
}

/** The bars of `zcio.net` against `node:net`, same run; `scale` as `--bar-scale`. */
export function apiBars(res: ApiBenchResult, scale = 1): NetBar[] {
  const bars = [
    ratioBar(res, 'http', 'zcio.net http keep-alive: req/s vs node:net', 'min', 1.3, (r) => r.value, 'wrk requests/s, medians'),
    ratioBar(res, 'http', 'zcio.net http keep-alive: p50 latency vs node:net', 'max', 1.0, (r) => r.p50Ms, 'wrk median latency, medians'),
    ratioBar(res, 'echo', 'zcio.net echo, pipelined 64 B x16: msgs/s vs node:net', 'min', 1.3, (r) => r.value, 'messages per second, medians'),
    ratioBar(res, 'churn', 'zcio.net connection churn: conns/s vs node:net', 'min', 1.8, (r) => r.value, 'connections per second, medians'),
    ratioBar(res, 'net-ping-pong', 'zcio.net ping-pong 64 B: round trip vs node:net', 'max', 1.0, (r) => r.value, 'us per round trip, medians'),
  ]
  return bars
    .filter((b) => res.groups.includes(b.group as ApiGroup))
    .map((b) => {
      if (scale === 1 || b.measured === null) return b
      const target = b.kind === 'min' ? b.target * scale : b.target / scale
      return { ...b, target, pass: b.kind === 'min' ? b.measured >= target : b.measured <= target }
    })
}

function fmt(group: ApiGroup, v: number): string {
  return group === 'net-ping-pong' ? v.toFixed(1) : fmtInt(v)
}

/** The tables of the groups, one per group, with each case's median, spread and ratio to node:net. */
export function apiReport(res: ApiBenchResult, width: number): string {
  const lines: string[] = []
  for (const group of res.groups) {
    const u = UNIT[group]
    lines.push('', `${group}: ${u.client}; ${res.runs} run(s) of ${res.seconds} s, medians`)
    const skipped = res.skipped.find((s) => s.group === group)
    if (skipped) {
      lines.push(`  skipped: ${skipped.reason}`)
      continue
    }
    const node = res.results.find((r) => r.group === group && r.impl === 'node')
    const rows = res.results
      .filter((r) => r.group === group)
      .map((r) => {
        const vs = r.runs.map((x) => x.value)
        const ratio = node && node.value > 0 ? fmtRatio(r.value / node.value) : '-'
        const row = [r.name, fmt(group, r.value), `${fmt(group, Math.min(...vs))}..${fmt(group, Math.max(...vs))}`, ratio]
        if (group === 'http') row.push(r.p50Ms === null ? '-' : r.p50Ms.toFixed(2))
        return row
      })
    const head = ['case', u.unit, 'min..max', 'vs node:net', ...(group === 'http' ? ['p50 ms'] : [])]
    lines.push(table([head, ...rows], head.map((_, i): Align => (i === 0 ? 'l' : 'r')), width))
    for (const n of res.notes.filter((x) => x.group === group)) {
      lines.push(...wrapLine(`  ${n.note}`, width))
      if (n.command) lines.push(...wrapLine(`    ${n.command}`, width, true))
    }
  }
  if (res.wrk) lines.push('', `http client: ${res.wrk}`)
  return lines.join('\n') + '\n'
}
