// Loopback TCP with zcio next to Node's `net` (and iperf3 for the stream,
// when installed), sender and receiver in separate processes (net-peer.ts):
// a 64 KiB-write stream, 64-byte ping-pong and pipelined 64-byte messages.
//
// Each run of a case starts a fresh pair of processes, sends a warm-up
// connection, then the measured one; runs go round-robin over the cases of
// a group so that drift on a busy machine spreads over all of them, and the
// median of each figure is reported. Progress goes to stderr.

import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import { GiB, MiB, Progress, benchBackends, errorMessage, loadZcio, onBackend } from './common.js'
import type { MachineFacts, ProbeResult } from './common.js'
import {
  GROUP_COUNT,
  MESSAGE_BYTES,
  NET_CASES,
  NODE_NET,
  IPERF3,
  SEND_DEPTH,
  UNITS,
  WINDOW,
  WRITE_BYTES,
} from './net-common.js'
import type { Cpu, Mode, NetCase, NetCaseResult, NetConfig, NetSample, NetSkipped, ParentMessage, PeerMessage, PeerSpec } from './net-common.js'
import { iperf3Command, iperf3Version, runIperf3 } from './net-iperf.js'
import { machineFacts } from './setup.js'
import { fmtInt } from './format.js'

export interface NetRunOptions {
  /** Stream bytes (default 4 GiB; rounded up to 64 KiB writes). */
  size?: number
  /** Runs per case (default 3). */
  runs?: number
  /** Ping-pong round trips per run (default 50,000). */
  roundTrips?: number
  /** Pipelined messages per run (default 1,000,000). */
  messages?: number
  /** Only these groups (default: all). */
  only?: readonly Mode[]
  quiet?: boolean
  progressStream?: NodeJS.WriteStream
}

export interface NetBenchResult {
  machine: MachineFacts & { loadAverageStart: number[]; loadAverageEnd: number[] }
  config: NetConfig
  zcio: { available: boolean; reason: string | null; probe: ProbeResult | null }
  iperf3: { version: string; command: string } | null
  results: NetCaseResult[]
  skipped: NetSkipped[]
  notes: string[]
}

export const GROUPS: readonly Mode[] = ['stream', 'ping-pong', 'pipelined']
/** Other processes' share of one CPU during a run above which the report says so. */
const OTHER_LOAD_NOTE = 0.1
const PEER_SCRIPT = path.join(__dirname, 'net-peer.js')

// ---------------------------------------------------------------------------
// Peer processes

type Of<T extends PeerMessage['type']> = Extract<PeerMessage, { type: T }>

/** A forked peer and the messages it sent, taken in order. */
class Peer {
  readonly #child: ChildProcess
  readonly #label: string
  readonly #inbox: PeerMessage[] = []
  #wake: (() => void) | null = null
  #gone: Error | null = null
  #stderr = ''
  readonly #exited: Promise<void>

  constructor(spec: PeerSpec, label: string, backend?: string) {
    this.#label = label
    const env = backend ? { ...process.env, ZCIO_BACKEND: backend } : process.env
    this.#child = fork(PEER_SCRIPT, [JSON.stringify(spec)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], execArgv: ['--expose-gc'], env })
    this.#child.stderr?.on('data', (d: Buffer) => (this.#stderr = (this.#stderr + d.toString('utf8')).slice(-4000)))
    this.#child.on('message', (m: PeerMessage) => {
      this.#inbox.push(m)
      this.#wake?.()
    })
    this.#exited = new Promise((resolve) => {
      this.#child.on('exit', (code, signal) => {
        const err = this.#stderr.trim()
        this.#gone = new Error(`${this.#label} exited (${signal ?? `code ${code}`})${err ? ': ' + err : ''}`)
        this.#wake?.()
        resolve()
      })
    })
    this.#child.on('error', (e) => {
      this.#gone = e
      this.#wake?.()
    })
  }

  send(m: ParentMessage): void {
    this.#child.send(m)
  }

  /** The next message, which must be of `type`; rejects on an error report, an exit or after `timeoutMs`. */
  async next<T extends PeerMessage['type']>(type: T, timeoutMs: number): Promise<Of<T>> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const m = this.#inbox.shift()
      if (m) {
        if (m.type === 'error') throw new Error(`${this.#label}: ${m.message}`)
        if (m.type !== type) throw new Error(`${this.#label}: expected '${type}', got '${m.type}'`)
        return m as Of<T>
      }
      if (this.#gone) throw this.#gone
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`${this.#label}: no '${type}' within ${Math.round(timeoutMs / 1000)} s`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#wake = () => {
          clearTimeout(timer)
          this.#wake = null
          resolve()
        }
      })
    }
  }

  /** Asks the peer to exit; kills it if it has not within 5 s. */
  async stop(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      if (this.#child.connected) this.#child.send({ type: 'exit' } satisfies ParentMessage)
      else this.#child.kill('SIGTERM')
    }
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000)
    await this.#exited
    clearTimeout(timer)
  }
}

interface Amounts {
  warm: number
  measured: number
  timeoutMs: number
}

/** One run of a case between two peers: a warm-up connection, then the measured one. */
async function runPeers(c: NetCase, a: Amounts, onPhase: (phase: string) => void): Promise<NetSample> {
  const impl = c.impl === 'zcio' ? 'zcio' : 'node'
  const server = new Peer({ role: 'server', impl, mode: c.group, busyPoll: c.busyPoll }, `${c.name} receiver`, c.backend)
  let client: Peer | null = null
  try {
    const { port } = await server.next('listening', 30_000)
    client = new Peer({ role: 'client', impl, mode: c.group, sender: c.sender ?? 'write', port, busyPoll: c.busyPoll }, `${c.name} sender`, c.backend)
    await client.next('ready', 30_000)
    onPhase('warm-up')
    client.send({ type: 'run', amount: a.warm })
    await Promise.all([client.next('ran', a.timeoutMs), server.next('served', a.timeoutMs)])
    onPhase('measuring')
    const machine = new MachineCpu()
    client.send({ type: 'run', amount: a.measured })
    const [ran, served] = await Promise.all([client.next('ran', a.timeoutMs), server.next('served', a.timeoutMs)])
    const window = machine.end()
    const want = c.group === 'stream' ? a.measured : a.measured * MESSAGE_BYTES
    if (served.bytes !== want) throw new Error(`${c.name}: the receiver counted ${served.bytes} bytes, expected ${want}`)
    const seconds = c.group === 'ping-pong' ? ran.seconds : served.seconds
    const perMessage = (ran.heap + served.heap) / (c.group === 'stream' ? a.measured / WRITE_BYTES : c.group === 'ping-pong' ? 2 * a.measured : a.measured)
    return sample(c.group, served.bytes, seconds, ran.cpu, served.cpu, a.measured, window, perMessage)
  } finally {
    await Promise.all([server.stop(), client?.stop()])
  }
}

/**
 * The CPU time of the whole machine over a window (/proc/stat): what the
 * rest of the machine used while a case ran, so that a busy run shows.
 */
class MachineCpu {
  readonly #start = procStat()
  readonly #t0 = performance.now()

  end(): { busySec: number | null; stealSec: number | null; wallSec: number } {
    const now = procStat()
    const wallSec = (performance.now() - this.#t0) / 1000
    if (now === null || this.#start === null) return { busySec: null, stealSec: null, wallSec }
    return { busySec: now.busy - this.#start.busy, stealSec: now.steal - this.#start.steal, wallSec }
  }
}

// User + nice + system seconds of all CPUs (no irq, softirq), and the time
// the hypervisor ran something else (steal).
function procStat(): { busy: number; steal: number } | null {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).map(Number)
    return { busy: (f[1] + f[2] + f[3]) / CLOCK_TICKS, steal: (f[8] || 0) / CLOCK_TICKS }
  } catch {
    return null
  }
}

// USER_HZ: 100 on every Linux architecture Node runs on.
const CLOCK_TICKS = 100

type Window = ReturnType<MachineCpu['end']>

function sample(
  group: Mode,
  bytes: number,
  seconds: number,
  clientCpu: Cpu,
  serverCpu: Cpu,
  count: number,
  window: Window,
  heapPerMessage: number | null,
): NetSample {
  const clientCpuSec = clientCpu.user + clientCpu.system
  const serverCpuSec = serverCpu.user + serverCpu.system
  const both = clientCpuSec + serverCpuSec
  const otherCpuSec = window.busySec === null ? null : Math.max(0, window.busySec - both)
  const base = { bytes, seconds, clientCpuSec, serverCpuSec, clientCpu, serverCpu, otherCpuSec, stealSec: window.stealSec, wallSec: window.wallSec, heapPerMessage }
  if (group === 'stream') return { ...base, value: (bytes * 8) / seconds / 1e9, cpu: both / (bytes / GiB) }
  // Ping-pong: two messages per round trip, one each way.
  if (group === 'ping-pong') return { ...base, count, value: (seconds / count) * 1e6, cpu: (both / (2 * count)) * 1e6 }
  return { ...base, count, value: count / seconds, cpu: (both / count) * 1e6 }
}

// ---------------------------------------------------------------------------
// The run

export function median(values: readonly number[]): number {
  const s = [...values].sort((x, y) => x - y)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

function config(opts: NetRunOptions): NetConfig {
  const size = Math.ceil((opts.size ?? 4 * GiB) / WRITE_BYTES) * WRITE_BYTES
  const roundTrips = opts.roundTrips ?? 50_000
  const messages = opts.messages ?? 1_000_000
  return {
    sizeBytes: size,
    warmupBytes: Math.max(WRITE_BYTES, Math.min(256 * MiB, Math.ceil(size / 8 / WRITE_BYTES) * WRITE_BYTES)),
    writeBytes: WRITE_BYTES,
    roundTrips,
    warmupRoundTrips: Math.max(1000, Math.ceil(roundTrips / 10)),
    messages,
    warmupMessages: Math.max(10_000, Math.ceil(messages / 10)),
    messageBytes: MESSAGE_BYTES,
    runs: opts.runs ?? 3,
    sendDepth: SEND_DEPTH,
    window: WINDOW,
    receiveGroup: { bufferSize: WRITE_BYTES, bufferCount: GROUP_COUNT, incremental: false },
    groups: GROUPS.filter((g) => !opts.only || opts.only.includes(g)),
  }
}

function amounts(group: Mode, cfg: NetConfig): Amounts {
  if (group === 'stream') return { warm: cfg.warmupBytes, measured: cfg.sizeBytes, timeoutMs: 60_000 + (cfg.sizeBytes / (10 * MiB)) * 1000 }
  if (group === 'ping-pong') return { warm: cfg.warmupRoundTrips, measured: cfg.roundTrips, timeoutMs: 60_000 + cfg.roundTrips * 0.5 }
  return { warm: cfg.warmupMessages, measured: cfg.messages, timeoutMs: 60_000 + cfg.messages * 0.2 }
}

function fmtValue(group: Mode, v: number): string {
  return group === 'stream' ? `${v.toFixed(2)} Gbit/s` : group === 'ping-pong' ? `${v.toFixed(1)} us/round trip` : `${fmtInt(v)} msgs/s`
}

/** Runs every case `runs` times and resolves with the medians and ratios. */
export async function runNet(opts: NetRunOptions = {}): Promise<NetBenchResult> {
  const cfg = config(opts)
  const progress = new Progress(opts.progressStream || process.stderr, opts.quiet)
  const notes: string[] = []
  const skipped: NetSkipped[] = []
  const loadAverageStart = os.loadavg()

  const zcio = await loadZcio()
  const probe = zcio.probe ?? null
  const iperf = iperf3Version()
  const why = (c: NetCase): string | null => {
    if (c.impl === 'iperf3') return iperf ? null : 'iperf3 not installed (apt-get install iperf3)'
    if (c.impl !== 'zcio') return null
    if (!zcio.available) return zcio.reason ?? 'zcio unavailable'
    if (c.backend === 'epoll') return null
    if (!probe?.bufRing) return `no provided-buffer rings (probe().bufRing is false; kernel ${probe?.kernelRelease}, needs Linux 5.19)`
    if (c.sender === 'sendZc' && !probe.sendZc) return `no zero-copy send (probe().sendZc is false; kernel ${probe.kernelRelease}, needs Linux 6.0)`
    return null
  }

  // zcio's cases on each backend: the first keeps the plain names.
  const backends = zcio.available ? benchBackends(probe?.backend) : []
  const all: NetCase[] = NET_CASES.flatMap((c) =>
    c.impl !== 'zcio' || backends.length === 0
      ? [c]
      : backends.map((backend, k) => ({ ...c, backend, name: k === 0 ? c.name : onBackend(c.name, backend) })),
  )
  if (backends.length > 1) notes.push(`zcio cases run on both backends: plain names on ${backends[0]}, "[${backends[1]}]" on ${backends[1]}`)
  const runnable = all.filter((c) => {
    const reason = why(c)
    if (reason) skipped.push({ group: c.group, name: c.name, reason })
    return !reason
  })
  const samples = new Map<NetCase, NetSample[]>(runnable.map((c) => [c, []]))
  const failed = new Set<NetCase>()
  const steps = runnable.filter((c) => cfg.groups.includes(c.group)).length * cfg.runs
  let step = 0

  for (const group of GROUPS) {
    if (!cfg.groups.includes(group)) continue
    const cases = runnable.filter((c) => c.group === group)
    const a = amounts(group, cfg)
    for (let r = 1; r <= cfg.runs; r++) {
      for (const c of cases) {
        step++
        if (failed.has(c)) continue
        const label = `[${step}/${steps}] ${group} > ${c.name}  run ${r}/${cfg.runs}`
        progress.line(`${label} ...`)
        const onPhase = (phase: string): void => progress.update(`${label}  ${phase}`)
        try {
          const s = c.impl === 'iperf3' ? await iperfSample(a, onPhase) : await runPeers(c, a, onPhase)
          samples.get(c)!.push(s)
          progress.clear()
          progress.line(`${label}: ${fmtValue(group, s.value)}, ${s.cpu.toFixed(3)} ${UNITS[group].cpu}`)
        } catch (e) {
          progress.clear()
          failed.add(c)
          const reason = `failed: ${errorMessage(e)}`
          skipped.push({ group, name: c.name, reason })
          notes.push(`${group} / ${c.name}: ${reason}`)
          progress.line(`${label}: ${reason}`)
        }
      }
    }
  }

  const results: NetCaseResult[] = []
  for (const c of runnable) {
    const runs = samples.get(c)!
    if (failed.has(c) || runs.length === 0) continue
    results.push({
      group: c.group,
      name: c.name,
      impl: c.impl,
      ...(c.backend ? { backend: c.backend } : {}),
      ...(c.info ? { info: true } : {}),
      unit: UNITS[c.group].value,
      cpuUnit: UNITS[c.group].cpu,
      value: median(runs.map((s) => s.value)),
      cpu: median(runs.map((s) => s.cpu)),
      clientCpuSec: median(runs.map((s) => s.clientCpuSec)),
      serverCpuSec: median(runs.map((s) => s.serverCpuSec)),
      heapPerMessage: runs.some((s) => s.heapPerMessage === null) ? null : median(runs.map((s) => s.heapPerMessage!)),
      maxOtherLoad: maxShare(runs, (s) => s.otherCpuSec),
      maxSteal: maxShare(runs, (s) => s.stealSec),
      runs,
      ratioToNode: null,
      cpuRatioToNode: null,
      ...(c.group === 'stream' ? { ratioToIperf3: null, cpuRatioToIperf3: null } : {}),
      ...(c.impl === 'iperf3' ? { command: iperf3Command(cfg.sizeBytes) } : {}),
    })
  }
  addRatios(results)
  const loadAverageEnd = os.loadavg()
  const busy = results.filter((r) => r.maxOtherLoad !== null && r.maxOtherLoad > OTHER_LOAD_NOTE)
  if (busy.length) {
    const worst = busy.reduce((x, y) => (y.maxOtherLoad! > x.maxOtherLoad! ? y : x))
    notes.push(
      `other processes used up to ${(worst.maxOtherLoad! * 100).toFixed(0)}% of a CPU during ${worst.group} / ${worst.name} ` +
        `(${busy.length} case${busy.length === 1 ? '' : 's'} above ${OTHER_LOAD_NOTE * 100}%): those figures are disturbed`,
    )
  }
  const steal = results.flatMap((r) => r.runs).reduce((n, x) => n + (x.stealSec ?? 0), 0)
  const wall = results.flatMap((r) => r.runs).reduce((n, x) => n + x.wallSec, 0)
  if (wall > 0 && steal / wall > OTHER_LOAD_NOTE) {
    notes.push(`the hypervisor took ${((steal / wall) * 100).toFixed(0)}% of a CPU on average during the measured runs (steal time)`)
  }
  progress.clear()
  return {
    machine: { ...machineFacts(zcio), loadAverageStart, loadAverageEnd },
    config: cfg,
    zcio: { available: zcio.available, reason: zcio.reason, probe },
    iperf3: iperf ? { version: iperf, command: iperf3Command(cfg.sizeBytes) } : null,
    results,
    skipped,
    notes,
  }
}

// The largest share of one CPU `of` a run took; /proc/stat counts in 10 ms
// ticks per CPU, so runs shorter than a second are left out.
function maxShare(runs: readonly NetSample[], of: (s: NetSample) => number | null): number | null {
  const long = runs.filter((s) => of(s) !== null && s.wallSec >= 1)
  return long.length ? Math.max(...long.map((s) => of(s)! / s.wallSec)) : null
}

async function iperfSample(a: Amounts, onPhase: (phase: string) => void): Promise<NetSample> {
  let machine: MachineCpu | null = null
  const r = await runIperf3(a.warm, a.measured, a.timeoutMs, (phase) => {
    if (phase === 'measuring') machine = new MachineCpu()
    onPhase(phase)
  })
  const window = (machine as MachineCpu | null)?.end() ?? { busySec: null, stealSec: null, wallSec: r.seconds }
  // CPU over everything sent; the rate is iperf3's own (its receiver's
  // bytes over its receiver's seconds, which leave out the last few writes).
  const s = sample('stream', a.measured, r.seconds, r.clientCpu, r.serverCpu, 0, window, null)
  return { ...s, value: r.bitsPerSecond / 1e9 }
}

function addRatios(results: NetCaseResult[]): void {
  for (const r of results) {
    const node = results.find((x) => x.group === r.group && x.name === NODE_NET)
    if (node && node.value > 0) r.ratioToNode = r.value / node.value
    if (node && node.cpu > 0) r.cpuRatioToNode = r.cpu / node.cpu
    if (r.group !== 'stream') continue
    const ref = results.find((x) => x.group === 'stream' && x.name === IPERF3)
    if (ref && ref.value > 0) r.ratioToIperf3 = r.value / ref.value
    if (ref && ref.cpu > 0) r.cpuRatioToIperf3 = r.cpu / ref.cpu
  }
}
