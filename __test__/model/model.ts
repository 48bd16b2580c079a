// The model of the model-based test: what it keeps next to each real ring,
// pool, file and pipe (the World, world.ts, holds both), and the helpers
// every command uses.
//
// The model follows the documented contract (README.md, DESIGN.md, the
// declarations in lib/index.d.ts), not the implementation. Where the contract
// leaves timing open, the model keeps every outcome the contract allows:
//
// - A readFixed/writeFixed operation is counted by the ring until its promise
//   settles: completions are reaped and settled in one step by the driver, so
//   between two commands an unsettled promise means an operation in flight.
// - An element of a batch, or a low-level submission, may have completed
//   (and its buffer be back to acquired) before the model hears of it (when
//   the batch resolves, or when its completion is taken). Such operations are
//   "maybe in flight": counts are checked against an interval, and calls whose
//   outcome depends on them (release, completeInFlight, close) may go either
//   way; the outcome then tells the model that they were reaped.
// - Operations that run concurrently on the same bytes (of a buffer or of a
//   file) make those bytes unknown; every other byte is checked.

import * as fs from 'node:fs'
import { getSystemErrorName, inspect } from 'node:util'

export { root, zcio } from '../load.js'
import { zcio } from '../load.js'
export type Ring = InstanceType<typeof zcio.Ring>
export type Pool = InstanceType<typeof zcio.RegisteredBufferPool>
export type Completion = import('../../index.js').Completion

export const EBADF = -9
export const EISDIR = -21
export const ECANCELED = -125
export const EINTR = -4

/** Largest file position the model uses for regular files (plus one buffer). */
export const FILE_SPAN = 192 * 1024
export const FILE_CAP = FILE_SPAN + 65536 + 4096
/** Pipe reads and writes stay below PIPE_BUF, so writes are atomic. */
export const PIPE_IO_MAX = 4096
/** Bytes a pipe may hold before the model stops writing to it. */
export const PIPE_ROOM = 32 * 1024
/** Operations one ring may have unsettled: below the smallest CQ (64). */
export const RING_OP_CAP = 48
/** How long anything that must settle may take. */
export const SETTLE_TIMEOUT_MS = 10_000
/** How long one command may take before the run reports it as a hang (the slowest take ~15 s under load). */
export const COMMAND_TIMEOUT_MS = 45_000
export const TABLE_SIZE = 16384

/** A property of the contract does not hold. */
export class ModelError extends Error {
  override name = 'ModelError'
}

/** A command that never finished: its promises stay pending, so the run is not shrunk (see runner.ts). */
export class HangError extends ModelError {
  override name = 'HangError'
}

export function fail(message: string): never {
  throw new ModelError(message)
}

export const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits up to `ms` for `cond`, looking every 2 ms; whether it held. */
export async function waitUntil(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (!cond() && Date.now() < end) await sleep(2)
  return cond()
}

// ---------------------------------------------------------------------------
// Model state

export interface FileM {
  kind: 'file'
  name: string
  fd: number
  path: string
  size: number
  sizeKnown: boolean
  data: Uint8Array
  known: Uint8Array
  ops: Set<Op>
}

export interface PipeM {
  kind: 'pipe'
  name: string
  fd: number
  /** What was written, in the order the model knows of. */
  chunks: Uint8Array[]
  /** What reads got, in the order they were observed. */
  pieces: Uint8Array[]
  written: number
  read: number
  /** Bytes written (or being written) and not yet seen read: an upper bound. */
  held: number
  /** At most one read and one zcio write were ever unsettled at a time. */
  sequential: boolean
  /** Some content is unknown: only byte counts are compared. */
  opaque: boolean
  /** A read nobody can observe happened: nothing is compared. */
  lost: boolean
  ops: Set<Op>
}

export interface SimpleTarget {
  kind: 'zero' | 'null' | 'dir' | 'bad'
  name: string
  fd: number
}

export type Target = FileM | PipeM | SimpleTarget

export type OpStatus = 'pending' | 'reaped' | 'done'

export interface Op {
  id: number
  kind: 'read' | 'write'
  api: 'promise' | 'batch' | 'manual'
  ring: RingM
  pool: PoolM
  buf: BufM
  view: Uint8Array | null
  target: Target
  pos: number
  len: number
  boff: number
  status: OpStatus
  /** A manual op of a ring nobody holds any more: its completion can't be taken. */
  observable: boolean
  /** The ring was closed while the op was unreaped: ECANCELED/EINTR allowed. */
  cancelable: boolean
  /** Writes: the bytes the model expects the kernel to write. */
  src: Uint8Array | null
  srcKnown: Uint8Array | null
  /** Reads: bytes of the buffer another party may write concurrently. */
  bufConflict: Uint8Array | null
  /** Writes: file bytes another write may write concurrently. */
  fileConflict: Uint8Array | null
  /** Reads of a file written concurrently: only 0 <= n <= len is checked. */
  ambiguous: boolean
  /** May be reaped before its promise settles (queued around a CQ overflow). */
  maybe: boolean
  /** Part of a flood: its buffer bytes are not tracked. */
  flood: boolean
  userData: bigint | null
  result: number | null
  label: string
}

export interface BufM {
  index: number
  acquired: boolean
  manual: boolean
  /** Ops on this buffer the model has not seen complete. */
  ops: Set<Op>
  data: Uint8Array
  known: Uint8Array
  view: Uint8Array | null
}

export interface PoolM {
  id: number
  name: string
  ring: RingM
  real: Pool | null
  size: number
  count: number
  closed: boolean
  bufs: BufM[]
  free: number[]
  acquired: Set<number>
  acquires: number
  exhausted: number
  releases: number
  submitted: number
  observedCompleted: number
  observedFailed: number
  /** Base of its range in the ring's buffer table, when known. */
  base: number | null
}

export interface WaiterM {
  id: number
  ring: RingM
  settled: boolean
}

export interface RingM {
  id: number
  name: string
  real: Ring | null
  entries: number
  sqpoll: boolean
  /** The kernel accepted IORING_SETUP_DEFER_TASKRUN for it. */
  deferTaskrun: boolean
  closed: boolean
  pools: PoolM[]
  ops: Set<Op>
  manual: Map<bigint, Op>
  waiters: WaiterM[]
  /** Allocated ranges of the registered-buffer table; null once unknown. */
  table: { start: number; len: number; maybeFreed: boolean }[] | null
}

export interface Tracked {
  label: string
  settled: boolean
}

/** How many io_uring instances this process has open (from /proc/self/fd). */
export function ioUringFds(): number {
  let n = 0
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === 'anon_inode:[io_uring]') n++
    } catch {
      // Closed meanwhile (the readdir's own fd).
    }
  }
  return n
}


export function overlap(a0: number, alen: number, b0: number, blen: number): [number, number] | null {
  const s = Math.max(a0, b0)
  const e = Math.min(a0 + alen, b0 + blen)
  return s < e ? [s, e] : null
}

export function errName(res: number): string {
  try {
    return getSystemErrorName(res)
  } catch {
    return `errno ${res}`
  }
}

export function show(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`
  if (v instanceof Uint32Array || v instanceof Float64Array || v instanceof Int32Array) {
    const head = [...v.subarray(0, 8)].join(', ')
    return v.length > 8 ? `${v.constructor.name}(${v.length}) [${head}, ...]` : `${v.constructor.name}.of(${head})`
  }
  return inspect(v, { depth: 1, breakLength: Infinity })
}

/** The code of what `fn` threw, or undefined. */
export function thrownCode(fn: () => unknown): { code: string | undefined; error: unknown; threw: boolean } {
  try {
    fn()
    return { code: undefined, error: undefined, threw: false }
  } catch (e) {
    return { code: (e as { code?: string }).code, error: e, threw: true }
  }
}

/** Node's error classes for the argument codes. */
export function checkErrorShape(e: unknown, code: string, what: string): void {
  if (!(e instanceof Error)) fail(`${what}: threw a non-Error ${show(e)}`)
  const got = (e as { code?: string }).code
  if (got !== code) fail(`${what}: expected ${code}, got ${got} (${e.message})`)
  cover(`error ${code}`)
  if (code === 'ERR_OUT_OF_RANGE' && !(e instanceof RangeError)) fail(`${what}: ERR_OUT_OF_RANGE is not a RangeError`)
  if ((code === 'ERR_INVALID_ARG_TYPE' || code === 'ERR_INVALID_ARG_VALUE') && !(e instanceof TypeError)) {
    fail(`${what}: ${code} is not a TypeError`)
  }
}

// ---------------------------------------------------------------------------

/**
 * Library bugs the driver found, each kept as a focused failing test in
 * __test__/model-findings.spec.ts. By default the model accepts the buggy
 * behaviour (logging it) so that the search goes on past them;
 * ZCIO_FUZZ_STRICT=1 makes them failures again.
 */
export const KNOWN_ISSUES: Record<string, string> = {}

/** What the runs exercised, summed over a session (printed at the end). */
export const coverage = new Map<string, number>()
export function cover(what: string, n = 1): void {
  coverage.set(what, (coverage.get(what) ?? 0) + n)
}

