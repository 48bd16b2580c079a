// Constants, protocol and record types shared by the net bench modules
// (the parent and its peer processes).

import type { BenchBackend } from './common.js'

export const HOST = '127.0.0.1'
/** Bytes per write of the stream cases, and per receive buffer. */
export const WRITE_BYTES = 64 * 1024
/** Bytes per message of the ping-pong and pipelined cases. */
export const MESSAGE_BYTES = 64
/** Buffers of the receive group (of WRITE_BYTES each). */
export const GROUP_COUNT = 128
/** 64 KiB sends in flight per zcio stream sender (`send()`, and pool buffers for `sendZc()`). */
export const SEND_DEPTH = 16
/** 64-byte sends in flight (zcio), or written per event-loop turn (Node), in the pipelined case. */
export const WINDOW = 128

export type Mode = 'stream' | 'ping-pong' | 'pipelined'
/** The client's send path: zcio `send()`/`sendZc()`, Node `socket.write()`, or writes corked per turn. */
export type Sender = 'send' | 'sendZc' | 'write' | 'cork'

/** `busyPoll`: the zcio rings' `busyPoll` (µs), both processes. */
export type PeerSpec =
  | { role: 'server'; impl: 'zcio' | 'node'; mode: Mode; busyPoll?: number }
  | { role: 'client'; impl: 'zcio' | 'node'; mode: Mode; sender: Sender; port: number; busyPoll?: number }

/** CPU seconds of one process over one connection. */
export interface Cpu {
  user: number
  system: number
}

export type PeerMessage =
  | { type: 'listening'; port: number }
  /** The client is set up and waits for `run`. */
  | { type: 'ready' }
  /** Bytes received; `seconds` from the first byte to end of stream. */
  /** `heap`: growth of the JS heap (bytes, after a full GC at both ends) over the connection. */
  | { type: 'served'; bytes: number; seconds: number; cpu: Cpu; heap: number }
  /** `seconds` from the first send to the last one done (ping-pong: the last reply). */
  | { type: 'ran'; seconds: number; cpu: Cpu; heap: number }
  | { type: 'error'; message: string }

export type ParentMessage =
  /** `amount`: bytes (stream), round trips (ping-pong) or messages (pipelined). */
  | { type: 'run'; amount: number }
  | { type: 'exit' }


// ---------------------------------------------------------------------------
// Cases and results

export const ZCIO_SEND = 'zcio send() -> multishot recv'
export const ZCIO_SENDZC = 'zcio sendZc(pool) -> multishot recv'
export const ZCIO_PINGPONG = 'zcio send() + multishot recv'
/** Busy polling of both zcio rings in ping-pong (µs). */
export const BUSY_POLL_US = 200
export const ZCIO_PINGPONG_BUSY = `zcio, busyPoll ${BUSY_POLL_US} µs`
export const NODE_NET = 'Node net'
export const NODE_CORK = 'Node net, cork per 128 (writev)'
export const IPERF3 = 'iperf3'

export type Impl = 'zcio' | 'node' | 'iperf3'

export interface NetCase {
  group: Mode
  name: string
  impl: Impl
  /** The client's send path (peers only). */
  sender?: Sender
  /** Shown for context; no bar is held against it. */
  info?: boolean
  /** `busyPoll` of both zcio rings (µs). */
  busyPoll?: number
  /** The backend of both zcio peers' rings (their `ZCIO_BACKEND`). */
  backend?: BenchBackend
}

export const NET_CASES: readonly NetCase[] = [
  { group: 'stream', name: ZCIO_SEND, impl: 'zcio', sender: 'send' },
  { group: 'stream', name: ZCIO_SENDZC, impl: 'zcio', sender: 'sendZc' },
  { group: 'stream', name: NODE_NET, impl: 'node', sender: 'write' },
  { group: 'stream', name: IPERF3, impl: 'iperf3' },
  { group: 'ping-pong', name: ZCIO_PINGPONG, impl: 'zcio', sender: 'send' },
  { group: 'ping-pong', name: ZCIO_PINGPONG_BUSY, impl: 'zcio', sender: 'send', busyPoll: BUSY_POLL_US },
  { group: 'ping-pong', name: NODE_NET, impl: 'node', sender: 'write' },
  { group: 'pipelined', name: ZCIO_SEND, impl: 'zcio', sender: 'send' },
  { group: 'pipelined', name: NODE_NET, impl: 'node', sender: 'write' },
  { group: 'pipelined', name: NODE_CORK, impl: 'node', sender: 'cork', info: true },
]

/** What a case's figure is: Gbit/s (stream), µs per round trip (ping-pong), messages/s (pipelined). */
export const UNITS: Readonly<Record<Mode, { value: string; cpu: string; higherIsBetter: boolean }>> = {
  stream: { value: 'Gbit/s', cpu: 'CPU s/GiB', higherIsBetter: true },
  'ping-pong': { value: 'us/round trip', cpu: 'CPU s/1M msgs', higherIsBetter: false },
  pipelined: { value: 'msgs/s', cpu: 'CPU s/1M msgs', higherIsBetter: true },
}

/** One measured connection (after its warm-up). */
export interface NetSample {
  /** Bytes the receiver counted. */
  bytes: number
  /** Round trips (ping-pong) or messages (pipelined); absent for streams. */
  count?: number
  /** What the rate is taken over: the receiver's first byte to end of stream; ping-pong: the client's first send to last reply. */
  seconds: number
  /** CPU seconds (user + system) of the sending (client) and receiving (server) process. */
  clientCpuSec: number
  serverCpuSec: number
  /** The same, split into user and system time. */
  clientCpu: Cpu
  serverCpu: Cpu
  /**
   * CPU seconds the rest of the machine used over the measured connection:
   * user + system time of all CPUs (/proc/stat) minus both processes'; null
   * where /proc/stat can't be read. Softirq time (the loopback's receive
   * path) and steal are left out.
   */
  otherCpuSec: number | null
  /** Steal time of all CPUs over the same window (the hypervisor ran something else); null without /proc/stat. */
  stealSec: number | null
  /** Seconds of the measured connection, as the parent saw it (the window of `otherCpuSec`). */
  wallSec: number
  /** JS heap growth of both processes over the connection (bytes, after a full GC), per message (stream: per 64 KiB write); null for iperf3. */
  heapPerMessage: number | null
  /** The case's figure (see `UNITS`). */
  value: number
  /** CPU seconds of both processes per GiB (stream) or per million 64-byte messages (ping-pong: both directions). */
  cpu: number
}

export interface NetCaseResult {
  group: Mode
  name: string
  impl: Impl
  /** The backend of a zcio case's rings. */
  backend?: BenchBackend
  info?: boolean
  unit: string
  cpuUnit: string
  /** Medians over the runs. */
  value: number
  cpu: number
  clientCpuSec: number
  serverCpuSec: number
  /** Median JS heap growth per message (see `NetSample.heapPerMessage`). */
  heapPerMessage: number | null
  /** The largest share of one CPU that other processes used during a run of 1 s or more (0.25: a quarter of a CPU); null if none was that long. */
  maxOtherLoad: number | null
  /** The same for steal time (the hypervisor running something else on this machine's CPUs). */
  maxSteal: number | null
  runs: NetSample[]
  /** Median figure against the group's Node net case (for ping-pong, a round-trip time ratio: below 1 is faster). */
  ratioToNode: number | null
  cpuRatioToNode: number | null
  /** Stream only: against iperf3. */
  ratioToIperf3?: number | null
  cpuRatioToIperf3?: number | null
  /** iperf3's measured command line. */
  command?: string
}

export interface NetSkipped {
  group: Mode
  name: string
  reason: string
}

export interface NetConfig {
  sizeBytes: number
  warmupBytes: number
  writeBytes: number
  roundTrips: number
  warmupRoundTrips: number
  messages: number
  warmupMessages: number
  messageBytes: number
  runs: number
  /** zcio stream sends in flight; pipelined: zcio sends in flight, Node writes per turn. */
  sendDepth: number
  window: number
  receiveGroup: { bufferSize: number; bufferCount: number; incremental: boolean }
  /** The groups measured (`--only`; default all). */
  groups: Mode[]
}

// ---------------------------------------------------------------------------
// The groups that run code written for `node:net` on `zcio.net` and on
// `node:net` itself (net-api-bench.ts, net-api-peer.ts).

/** HTTP keep-alive through wrk, pipelined echo, connection churn, ping-pong; each on `zcio.net` and `node:net`. */
export type ApiGroup = 'http' | 'echo' | 'churn' | 'net-ping-pong'
export const API_GROUPS: readonly ApiGroup[] = ['http', 'echo', 'churn', 'net-ping-pong']
/** Connections of the echo group, and 64 B messages each keeps in flight. */
export const API_ECHO_CONNECTIONS = 16
export const API_ECHO_WINDOW = 128
/** Connect-send-reply-close loops running at once in the churn group. */
export const API_CHURN_PARALLEL = 64
/** wrk's connections in the http group (one thread). */
export const API_HTTP_CONNECTIONS = 64

export type ApiPeerSpec =
  | { role: 'server'; impl: 'zcio' | 'node'; group: ApiGroup }
  /** The echo server of ferrings (net-ferrings.ts), loaded from `dir`; its client is node:net's. */
  | { role: 'server'; impl: 'ferrings'; group: 'echo'; dir: string }
  | { role: 'client'; impl: 'zcio' | 'node'; group: ApiGroup; port: number; seconds: number; warm: number }

export type ApiPeerMessage =
  | { type: 'listening'; port: number }
  | { type: 'result'; ops: number; seconds: number; cpuSec: number }
  | { type: 'error'; message: string }

/** A bar: a ratio of zcio's median to a reference's that has to be at least (or at most) `target`. */
export interface NetBar {
  group: Mode | ApiGroup
  bar: string
  measured: number | null
  target: number
  /** `min`: measured >= target; `max`: measured <= target. */
  kind: 'min' | 'max'
  /** Null when a side of the comparison was not measured. */
  pass: boolean | null
  detail: string
  /** Set when `measured` is an amount (bytes), not a ratio. */
  unit?: string
}

