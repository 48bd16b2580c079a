// Constants, record types and small helpers shared by the bench modules.

import type { Ring, RegisteredBufferPool } from 'zcio'

export const KiB = 1024
export const MiB = 1024 * KiB
export const GiB = 1024 * MiB

export const BLOCK = 4 * KiB // random reads
export const SEQ_BLOCK = MiB // sequential reads
export const RANDOM_DEPTH = 64
export const SEQ_DEPTH = 4
export const WARMUP_MS = 300
export const PAINT_MS = 100
export const SEED = 0x2545f491
export const MIN_SIZE = SEQ_BLOCK

export const GROUP_RAND_D1 = 'random 4K d1'
export const GROUP_RAND_D64 = 'random 4K d64'
export const GROUP_SEQ = 'sequential 1M'
export const GROUPS = [GROUP_RAND_D1, GROUP_RAND_D64, GROUP_SEQ] as const
export type Group = (typeof GROUPS)[number]

export const FS_READ = 'fs.read (callback)'
export const FH_READ = 'FileHandle.read (fs.promises)'
export const READ_SYNC = 'fs.readSync'
export const ZCIO_PROMISE = 'zcio readFixed (promise)'
export const ZCIO_BATCH = 'zcio readFixedBatch'

/**
 * The name of a zcio case on the second backend of a run that measures
 * both (the first keeps the plain name): `zcio readFixed (promise) [epoll]`.
 */
export function onBackend(name: string, backend: string): string {
  return `${name} [${backend}]`
}

/** A backend zcio's rings run on. */
export type BenchBackend = 'io_uring' | 'epoll'

/**
 * The backends a bench runs zcio's cases on: the one `ZCIO_BACKEND` (or
 * `--backend`) names, else both where io_uring is usable (io_uring first,
 * with the plain case names), else epoll.
 */
export function benchBackends(backend: string | undefined): BenchBackend[] {
  const forced = process.env.ZCIO_BACKEND
  if (forced === 'io_uring' || forced === 'epoll') return [forced]
  return backend === 'io_uring' ? ['io_uring', 'epoll'] : ['epoll']
}

/** Concurrent operations of a case, or `'sync'` for a blocking loop. */
export type Depth = number | 'sync'

/** The library's TypeScript layer, loaded on demand so that a missing addon is reported, not fatal. */
export type Zcio = typeof import('zcio')
export type ProbeResult = ReturnType<Zcio['probe']>
export type { Ring, RegisteredBufferPool }
export type RingFeatures = Ring['features']

export interface ZcioStatus {
  available: boolean
  reason: string | null
  probe?: ProbeResult
  lib?: Zcio
}

/** One measured case. */
export interface CaseResult {
  group: Group
  name: string
  depth: Depth
  blockBytes: number
  ops: number
  elapsedSec: number
  opsPerSec: number
  gbPerSec: number
  /** Against `fs.read` (callback) of the group at the same depth. */
  ratioToFsRead: number | null
  /** Against the group's tuned fio run (the reference). */
  ratioToFio: number | null
  /** JS heap growth over a zcio case (after full GCs). */
  heapDeltaBytes?: number
  /** The backend of a zcio case's ring. */
  backend?: 'io_uring' | 'epoll'
}

export interface SkippedCase {
  group: Group
  name: string
  depth: Depth
  reason: string
}

/** `tuned`: fio at its best on this workload, the reference; `defaults`: fio as most people run it. */
export type FioVariant = 'tuned' | 'defaults'

/** One fio run on the bench file. */
export interface FioRun {
  group: Group
  name: string
  variant: FioVariant
  depth: number
  /** The exact command line, as run (shell-quoted). */
  command: string
  iops?: number
  bwBytes?: number
  gbPerSec?: number
  ratioToFsRead?: number | null
  /** Against the group's tuned run. */
  ratioToFio?: number | null
  error?: string
}

export interface FioReport {
  version: string
  runs: FioRun[]
}

export interface MachineFacts {
  cpus: number
  cpuModel: string
  kernelRelease: string
  /** The backend zcio's rings ran on (`probe().backend`), when zcio loaded. */
  backend?: string
  node: string
  platform: string
  arch: string
  totalMemBytes: number
  memlockLimit?: number
}

export interface BenchConfig {
  sizeBytes: number
  durationSec: number
  warmupSec: number
  file: string
  randomBlockBytes: number
  randomDepth: number
  seqBlockBytes: number
  seqDepth: number
  prng: string
  seed: number
  gcExposed: boolean
}

export interface BenchResult {
  machine: MachineFacts
  config: BenchConfig
  zcio: { available: boolean; reason: string | null; ringFeatures: RingFeatures | null }
  results: CaseResult[]
  skipped: SkippedCase[]
  fio: FioReport | null
  notes: string[]
}

/** An error with a Node-style `code`. */
export class BenchError extends Error {
  readonly code: string
  constructor(code: string, message: string) {
    super(message)
    this.code = code
  }
}

export function usageError(message: string): BenchError {
  return new BenchError('ERR_ZCIO_BENCH_USAGE', message)
}

export function readError(what: string, got: number, want: number, offset: number): BenchError {
  return new BenchError(
    'ERR_ZCIO_BENCH_READ',
    got < 0
      ? `${what} failed at offset ${offset}: errno ${-got}`
      : `${what} returned ${got} bytes at offset ${offset}, expected ${want} (short read)`,
  )
}

/** The `code` of a thrown value, when it has a string one. */
export function errorCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string') return e.code
  return undefined
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e)
}

// xorshift32: cheap and identical for every case, so no case pays more for
// its offsets than another.
export class XorShift32 {
  private state: number

  constructor(seed: number) {
    this.state = seed >>> 0 || 1
  }

  next(): number {
    let x = this.state
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.state = x >>> 0
    return this.state
  }
}

// ---------------------------------------------------------------------------
// Progress on stderr

export class Progress {
  private readonly stream: NodeJS.WriteStream
  private readonly quiet: boolean
  private readonly tty: boolean
  private shown = false

  constructor(stream: NodeJS.WriteStream, quiet?: boolean) {
    this.stream = stream
    this.quiet = !!quiet
    this.tty = !this.quiet && !!stream.isTTY
  }

  /** Replaces the progress line (TTY only). */
  update(text: string): void {
    if (!this.tty) return
    const width = (this.stream.columns || 80) - 1
    this.stream.write('\r' + (text.length > width ? text.slice(0, width) : text) + '\x1b[K')
    this.shown = true
  }

  clear(): void {
    if (this.tty && this.shown) {
      this.stream.write('\r\x1b[K')
      this.shown = false
    }
  }

  /** A line of its own (non-TTY only): the start or end of a step. */
  line(text: string): void {
    if (this.quiet || this.tty) return
    this.stream.write(text + '\n')
  }
}

/** `args` as one POSIX shell command line. */
export function shellJoin(args: readonly string[]): string {
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ')
}

export function mib(bytes: number): string {
  return (bytes / MiB).toFixed(bytes % MiB === 0 ? 0 : 1)
}

// ---------------------------------------------------------------------------
// Loading the library

/** Loads the library and checks that this kernel and process can run it. */
export async function loadZcio(): Promise<ZcioStatus> {
  let lib: Zcio
  try {
    lib = await import('zcio')
  } catch (e) {
    return { available: false, reason: `cannot load zcio: ${errorMessage(e)}` }
  }
  let probe: ProbeResult
  try {
    probe = lib.probe()
  } catch (e) {
    return { available: false, reason: `probe() failed: ${errorMessage(e)}` }
  }
  // The epoll backend has everything the benches use.
  if (probe.backend === 'epoll') return { available: true, probe, lib, reason: null }
  if (!probe.ioUring) return { available: false, probe, reason: `io_uring unavailable: ${probe.reason || 'unknown reason'}` }
  if (!probe.fixedBuffers) {
    return { available: false, probe, reason: `fixed buffers unsupported by kernel ${probe.kernelRelease} (needs Linux 5.13+)` }
  }
  return { available: true, probe, lib, reason: null }
}

export function heapUsed(): number {
  if (globalThis.gc) {
    globalThis.gc()
    globalThis.gc()
  }
  return process.memoryUsage().heapUsed
}
