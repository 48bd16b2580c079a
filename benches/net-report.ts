// Tables, bars and the JSON document of `zcio bench net`.

import { fitText, outputWidth, table, wrapLine } from './layout.js'
import type { Align } from './layout.js'
import type { NetBenchResult } from './net-bench.js'
import { IPERF3, NODE_NET, UNITS, ZCIO_PINGPONG, ZCIO_PINGPONG_BUSY, ZCIO_SEND, ZCIO_SENDZC } from './net-common.js'
import type { Mode, NetBar, NetCaseResult, NetSample } from './net-common.js'
import type { ApiBenchResult } from './net-api-bench.js'
import { apiReport } from './net-api-bench.js'
import { fmtBytes, fmtInt, fmtRatio, passMark } from './format.js'
import { onBackend } from './common.js'
import type { BenchBackend } from './common.js'

export type { NetBar } from './net-common.js'

/** The document `--json` writes. */
export interface NetBenchJson extends NetBenchResult {
  bars: NetBar[]
  /** The zcio.net groups (http, echo, churn, net-ping-pong), when run. */
  api?: ApiBenchResult
  /** `--bar-scale`, when not 1: the bars' targets are scaled by it. */
  barScale?: number
}

function find(res: NetBenchResult, group: Mode, name: string): NetCaseResult | undefined {
  return res.results.find((r) => r.group === group && r.name === name)
}

/** zcio's case `name` of `group` on `backend` (either name it may have: plain, or suffixed when it ran second). */
function zcioOn(res: NetBenchResult, group: Mode, name: string, backend: BenchBackend): NetCaseResult | undefined {
  return res.results.find(
    (r) => r.group === group && r.impl === 'zcio' && r.backend === backend && (r.name === name || r.name === onBackend(name, backend)),
  )
}

function bar(group: Mode, text: string, kind: 'min' | 'max', target: number, num: number | undefined, den: number | undefined, detail: string): NetBar {
  const measured = num !== undefined && den !== undefined && den > 0 ? num / den : null
  const pass = measured === null ? null : kind === 'min' ? measured >= target : measured <= target
  return { group, bar: text, measured, target, kind, pass, detail }
}

/** `b` held `scale` times as strict: a `min` target multiplied by it, a `max` one divided by it. */
function scaled(b: NetBar, scale: number): NetBar {
  if (scale === 1) return b
  const target = b.kind === 'min' ? b.target * scale : b.target / scale
  const pass = b.measured === null ? null : b.kind === 'min' ? b.measured >= target : b.measured <= target
  return { ...b, target, pass }
}

/** The network bars, checked against `res`; `scale` as `--bar-scale` (1: the bars as they are). */
export function netBars(res: NetBenchResult, scale = 1): NetBar[] {
  const out: NetBar[] = []
  const node = find(res, 'stream', NODE_NET)
  const iperf = find(res, 'stream', IPERF3)
  const ppNode = find(res, 'ping-pong', NODE_NET)
  const pipeNode = find(res, 'pipelined', NODE_NET)
  for (const [name, short] of [
    [ZCIO_SEND, 'send()'],
    [ZCIO_SENDZC, 'sendZc()'],
  ] as const) {
    const z = zcioOn(res, 'stream', name, 'io_uring')
    out.push(bar('stream', `stream ${short}: Gbit/s vs Node net`, 'min', 1.0, z?.value, node?.value, 'throughput, medians'))
    out.push(bar('stream', `stream ${short}: Gbit/s vs iperf3`, 'min', 0.9, z?.value, iperf?.value, iperf ? 'throughput, medians' : 'no iperf3 run'))
    out.push(bar('stream', `stream ${short}: CPU/GiB vs Node net`, 'max', 0.8, z?.cpu, node?.cpu, 'CPU s per GiB, both processes'))
    out.push(bar('stream', `stream ${short}: CPU/GiB vs iperf3`, 'max', 1.15, z?.cpu, iperf?.cpu, iperf ? 'CPU s per GiB, both processes' : 'no iperf3 run'))
  }
  const pipe = zcioOn(res, 'pipelined', ZCIO_SEND, 'io_uring')
  out.push(bar('pipelined', 'pipelined 64 B: msgs/s vs Node net', 'min', 3.0, pipe?.value, pipeNode?.value, 'messages per second, medians'))
  const pp = zcioOn(res, 'ping-pong', ZCIO_PINGPONG, 'io_uring')
  out.push(bar('ping-pong', 'ping-pong 64 B: round trip vs Node net', 'max', 0.6, pp?.value, ppNode?.value, 'us per round trip, medians'))
  const busy = zcioOn(res, 'ping-pong', ZCIO_PINGPONG_BUSY, 'io_uring')
  out.push(bar('ping-pong', 'ping-pong 64 B, busyPoll: round trip vs Node net', 'max', 0.6, busy?.value, ppNode?.value, 'us per round trip, medians'))
  // The epoll backend: every case at least as good as Node net, same run.
  for (const [name, short] of [
    [ZCIO_SEND, 'send()'],
    [ZCIO_SENDZC, 'sendZc()'],
  ] as const) {
    const z = zcioOn(res, 'stream', name, 'epoll')
    if (!z) continue
    out.push(bar('stream', `epoll stream ${short}: Gbit/s vs Node net`, 'min', 1.0, z.value, node?.value, 'throughput on epoll, medians'))
    out.push(bar('stream', `epoll stream ${short}: CPU/GiB vs Node net`, 'max', 1.0, z.cpu, node?.cpu, 'CPU s per GiB on epoll, both processes'))
  }
  const ePipe = zcioOn(res, 'pipelined', ZCIO_SEND, 'epoll')
  if (ePipe) out.push(bar('pipelined', 'epoll pipelined 64 B: msgs/s vs Node net', 'min', 1.0, ePipe.value, pipeNode?.value, 'messages per second on epoll, medians'))
  for (const [name, text] of [
    [ZCIO_PINGPONG, 'epoll ping-pong 64 B: round trip vs Node net'],
    [ZCIO_PINGPONG_BUSY, 'epoll ping-pong 64 B, busyPoll: round trip vs Node net'],
  ] as const) {
    const z = zcioOn(res, 'ping-pong', name, 'epoll')
    if (z) out.push(bar('ping-pong', text, 'max', 1.0, z.value, ppNode?.value, 'us per round trip on epoll, medians'))
  }
  // Messages must not leave garbage behind: the heap after a full GC grows
  // by less than a byte per message (zcio's cases, both processes).
  for (const group of ['ping-pong', 'pipelined'] as const) {
    const worst = res.results
      .filter((r) => r.group === group && r.impl === 'zcio' && r.heapPerMessage !== null)
      .reduce<number | undefined>((m, r) => Math.max(m ?? -Infinity, r.heapPerMessage!), undefined)
    out.push({ ...bar(group, `${group} 64 B: zcio JS heap growth per message`, 'max', 1, worst, 1, 'after a full GC, both processes, medians'), unit: 'B' })
  }
  return out.filter((b) => (res.config.groups as readonly string[]).includes(b.group)).map((b) => scaled(b, scale))
}

function fmtValue(group: Mode, v: number): string {
  if (group === 'stream') return v.toFixed(2)
  if (group === 'ping-pong') return v.toFixed(1)
  return fmtInt(v)
}

function fmtShare(v: number | null): string {
  return v === null ? '-' : `${(v * 100).toFixed(0)}%`
}

function fmtCpu(v: number): string {
  return v >= 10 ? v.toFixed(1) : v.toFixed(3)
}

function spread(group: Mode, runs: readonly NetSample[]): string {
  if (runs.length < 2) return '-'
  const vs = runs.map((s) => s.value)
  return `${fmtValue(group, Math.min(...vs))}..${fmtValue(group, Math.max(...vs))}`
}

// CPU of the two processes, each scaled like the total (per GiB or per million messages).
function cpuSplit(r: NetCaseResult): string {
  const both = r.clientCpuSec + r.serverCpuSec
  if (!(both > 0)) return fmtCpu(r.cpu)
  const k = r.cpu / both
  return `${fmtCpu(r.cpu)} (${fmtCpu(r.clientCpuSec * k)} + ${fmtCpu(r.serverCpuSec * k)})`
}

const TITLES: Record<Mode, (res: NetBenchResult) => string> = {
  stream: (res) =>
    `stream: ${fmtBytes(res.config.sizeBytes)} in ${res.config.writeBytes / 1024} KiB writes (warm-up ${fmtBytes(res.config.warmupBytes)}); ` +
    `zcio: ${res.config.sendDepth} sends in flight, receive group ${res.config.receiveGroup.bufferCount} x ${res.config.receiveGroup.bufferSize / 1024} KiB`,
  'ping-pong': (res) =>
    `ping-pong: ${fmtInt(res.config.roundTrips)} round trips of ${res.config.messageBytes} B each way (warm-up ${fmtInt(res.config.warmupRoundTrips)}), TCP_NODELAY`,
  pipelined: (res) =>
    `pipelined: ${fmtInt(res.config.messages)} messages of ${res.config.messageBytes} B (warm-up ${fmtInt(res.config.warmupMessages)}), ` +
    `zcio ${res.config.window} sends in flight, Node up to ${res.config.window} writes per turn, TCP_NODELAY`,
}

export function fmtNetMeasured(b: NetBar): string {
  return fmtNetValue(b, b.measured)
}

export function fmtNetTarget(b: NetBar): string {
  return `${b.kind === 'min' ? '>=' : '<='} ${fmtNetValue(b, b.target)}`
}

function fmtNetValue(b: NetBar, v: number | null): string {
  if (!b.unit) return fmtRatio(v)
  return v === null ? '-' : `${Number(v.toPrecision(3))} ${b.unit}`
}

/** The tables, notes and bars of a run, fitted to `width` columns. */
export function netReport(res: NetBenchResult, bars: readonly NetBar[], width: number = outputWidth(), api?: ApiBenchResult): string {
  const m = res.machine
  const out: string[] = []
  out.push(
    `zcio bench net: ${m.cpus} CPU x ${m.cpuModel} | kernel ${m.kernelRelease} | Node ${m.node}` +
      `${res.iperf3 ? ` | ${res.iperf3.version}` : ''} | loopback TCP, sender and receiver in separate processes`,
  )
  out.push(
    `${res.config.runs} run${res.config.runs === 1 ? '' : 's'} per case (fresh processes, warm-up connection first), medians | ` +
      `load average ${m.loadAverageStart[0].toFixed(2)} -> ${m.loadAverageEnd[0].toFixed(2)}`,
  )
  if (m.backend) out.push(`zcio backend: ${m.backend}`)
  out.push('CPU: user + system of both processes (getrusage), sender + receiver in parentheses')
  out.push(
    'others, steal: the most CPU the rest of the machine, and the hypervisor (steal), took during a run of the case ' +
      '(of a second or more), in % of one CPU (/proc/stat)',
  )
  for (const note of res.notes) out.push(`note: ${note}`)

  for (const group of res.config.groups) {
    const u = UNITS[group]
    const stream = group === 'stream'
    // The spread of the runs, when there are several (a single run has none).
    const spreadCol = res.config.runs > 1
    const head = ['case', u.value, ...(spreadCol ? ['min..max'] : []), u.cpu, 'vs Node', 'CPU vs Node']
    if (stream) head.push('vs iperf3', 'CPU vs iperf3')
    head.push('others', 'steal')
    const rows: string[][] = [head]
    for (const r of res.results.filter((x) => x.group === group)) {
      const row = [r.name, fmtValue(group, r.value), ...(spreadCol ? [spread(group, r.runs)] : [])]
      row.push(cpuSplit(r), fmtRatio(r.ratioToNode), fmtRatio(r.cpuRatioToNode))
      if (stream) row.push(fmtRatio(r.ratioToIperf3), fmtRatio(r.cpuRatioToIperf3))
      row.push(fmtShare(r.maxOtherLoad), fmtShare(r.maxSteal))
      rows.push(row)
    }
    for (const s of res.skipped.filter((x) => x.group === group)) {
      rows.push([s.name, 'skipped', ...head.slice(2).map(() => '-')])
    }
    out.push('', TITLES[group](res), table(rows, ['l', ...head.slice(1).map((): Align => 'r')], width))
    if (stream && res.iperf3) {
      out.push(...wrapLine('  iperf3 server: iperf3 -s -p <port> -B 127.0.0.1 --forceflush', width, true))
      out.push(...wrapLine(`  iperf3 client: ${res.iperf3.command}`, width, true))
    }
    if (group === 'ping-pong') out.push('  vs Node: round-trip time ratio to Node net (below 1.00x is faster); CPU per message counts both directions')
  }
  const reasons = new Set(res.skipped.map((s) => s.reason))
  if (reasons.size) out.push('')
  for (const reason of reasons) out.push(`skipped: ${reason}`)
  if (api) out.push(apiReport(api, width))

  const rows: string[][] = [['bar', 'measured', 'target', '', 'detail']]
  for (const b of bars) {
    let detail = b.detail
    if (b.pass === false && b.measured !== null) {
      const off = b.kind === 'min' ? b.target / b.measured - 1 : b.measured / b.target - 1
      detail += `; ${b.kind === 'min' ? 'needs' : 'over by'} ${(off * 100).toFixed(0)}%${b.kind === 'min' ? ' more' : ''}`
    }
    rows.push([b.bar, fmtNetMeasured(b), fmtNetTarget(b), b.pass === null ? 'n/a' : passMark(b.pass), detail])
  }
  out.push('', 'summary', table(rows, ['l', 'r', 'r', 'l', 'l'], width))
  return fitText(out.join('\n'), width) + '\n'
}
