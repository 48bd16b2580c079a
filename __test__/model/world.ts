// The world of the model-based test: the real rings, pools, files and pipes,
// and next to each of them what the model says it must look like.
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

import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { getSystemErrorName, inspect } from 'node:util'

export { root, zcio } from '../load.js'
import { zcio } from '../load.js'
export type Ring = InstanceType<typeof zcio.Ring>
export type Pool = InstanceType<typeof zcio.RegisteredBufferPool>
export type Completion = import('../../lib/index.js').Completion

export const EBADF = -9
export const EISDIR = -21
export const ECANCELED = -125
export const EINTR = -4

/** Largest file position the model uses for regular files (plus one buffer). */
export const FILE_SPAN = 192 * 1024
const FILE_CAP = FILE_SPAN + 65536 + 4096
/** Pipe reads and writes stay below PIPE_BUF, so writes are atomic. */
export const PIPE_IO_MAX = 4096
/** Bytes a pipe may hold before the model stops writing to it. */
const PIPE_ROOM = 32 * 1024
/** Operations one ring may have unsettled: below the smallest CQ (64). */
export const RING_OP_CAP = 48
/** How long anything that must settle may take. */
export const SETTLE_TIMEOUT_MS = 10_000
const TABLE_SIZE = 16384

/** A property of the contract does not hold. */
export class ModelError extends Error {
  override name = 'ModelError'
}

export function fail(message: string): never {
  throw new ModelError(message)
}

export const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

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

interface Tracked {
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

/** What lives for a whole fuzzing session (FIFOs are slow to make). */
export interface Session {
  dir: string
  fifos: { path: string; fd: number }[]
  workerFifo: { path: string; fd: number }
  workerFile: { path: string; fd: number }
  /** Registrations can fail with ENOMEM (RLIMIT_MEMLOCK applies). */
  memlockApplies: boolean
  hasGc: boolean
  /** io_uring instances open before the session (other users' rings). */
  ringFds: number
  close(): void
}

export function openSession(): Session {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zcio-fuzz-'))
  const fifo = (name: string) => {
    const p = path.join(dir, name)
    execFileSync('mkfifo', [p])
    return { path: p, fd: fs.openSync(p, fs.constants.O_RDWR | fs.constants.O_NONBLOCK) }
  }
  const fifos = [fifo('pipe0'), fifo('pipe1')]
  const workerFifo = fifo('worker-pipe')
  const wf = path.join(dir, 'worker-file')
  fs.writeFileSync(wf, Buffer.alloc(64 * 1024, 7))
  const workerFile = { path: wf, fd: fs.openSync(wf, 'r') }
  const p = zcio.probe()
  let capIpcLock = false
  try {
    const eff = /CapEff:\s*([0-9a-f]+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1]
    capIpcLock = eff !== undefined && (BigInt('0x' + eff) & (1n << 14n)) !== 0n
  } catch {
    // Not Linux procfs: assume the limit applies.
  }
  return {
    dir,
    fifos,
    workerFifo,
    workerFile,
    memlockApplies: !capIpcLock && p.memlockLimit !== undefined && p.memlockLimit !== null,
    hasGc: typeof globalThis.gc === 'function',
    ringFds: ioUringFds(),
    close() {
      for (const f of [...fifos, workerFifo, workerFile]) fs.closeSync(f.fd)
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}

function overlap(a0: number, alen: number, b0: number, blen: number): [number, number] | null {
  const s = Math.max(a0, b0)
  const e = Math.min(a0 + alen, b0 + blen)
  return s < e ? [s, e] : null
}

function errName(res: number): string {
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

export interface WorldOptions {
  /** Tolerate the library bugs listed in KNOWN_ISSUES (the default). */
  tolerateKnown: boolean
}

/** What the runs exercised, summed over a session (printed at the end). */
export const coverage = new Map<string, number>()
export function cover(what: string, n = 1): void {
  coverage.set(what, (coverage.get(what) ?? 0) + n)
}

export class World {
  readonly session: Session
  readonly options: WorldOptions
  rings: RingM[] = []
  pools: PoolM[] = []
  files: FileM[] = []
  pipes: PipeM[] = []
  zero!: SimpleTarget
  null!: SimpleTarget
  dir!: SimpleTarget
  /** Failures found outside a command (in a promise reaction). */
  failures: string[] = []
  trace: string[] = []
  tracked: Tracked[] = []
  /** The ops of each batch, by op: a batch settles as a whole. */
  batchOf = new Map<Op, Op[]>()
  workersStarted = 0
  bigPools = 0
  /**
   * Inside a promise reaction: the driver reaps a whole round before any
   * reaction runs, so other ops of the round are done in the core although
   * their own reactions are still queued.
   */
  reacting = 0
  commands = 0
  private nextId = 0
  private runDir: string
  private closedFds: number[] = []

  constructor(session: Session, options: WorldOptions) {
    this.session = session
    this.options = options
    this.runDir = fs.mkdtempSync(path.join(session.dir, 'run-'))
    for (let k = 0; k < 2; k++) {
      const p = path.join(this.runDir, `file${k}`)
      const size = k === 0 ? 64 * 1024 + 123 : 0
      const data = new Uint8Array(FILE_CAP)
      for (let i = 0; i < size; i++) data[i] = (i * 7 + (i >> 8)) & 0xff
      fs.writeFileSync(p, data.subarray(0, size))
      const known = new Uint8Array(FILE_CAP).fill(1)
      this.files.push({ kind: 'file', name: `file${k}`, fd: fs.openSync(p, 'r+'), path: p, size, sizeKnown: true, data, known, ops: new Set() })
    }
    session.fifos.forEach((f, k) => {
      // Left empty by the previous run (checked by its finish()).
      this.pipes.push({
        kind: 'pipe', name: `pipe${k}`, fd: f.fd, chunks: [], pieces: [], written: 0, read: 0, held: 0,
        sequential: true, opaque: false, lost: false, ops: new Set(),
      })
    })
    this.zero = { kind: 'zero', name: '/dev/zero', fd: fs.openSync('/dev/zero', 'r+') }
    this.null = { kind: 'null', name: '/dev/null', fd: fs.openSync('/dev/null', 'r+') }
    this.dir = { kind: 'dir', name: 'a directory', fd: fs.openSync(this.runDir, 'r') }
  }

  id(): number {
    return this.nextId++
  }

  log(line: string): void {
    this.trace.push(line)
  }

  /** Whether to accept the behaviour of a known bug (it is logged either way). */
  known(issue: string): boolean {
    this.log(`  known issue: ${KNOWN_ISSUES[issue]}`)
    return this.options.tolerateKnown
  }

  /** Records a failure found in a promise reaction; thrown at the next check. */
  asyncFail(e: unknown): void {
    this.failures.push(e instanceof ModelError ? e.message : `unexpected ${e instanceof Error ? e.stack : show(e)}`)
  }

  track<T>(p: Promise<T>, label: string): Tracked {
    const t: Tracked = { label, settled: false }
    this.tracked.push(t)
    const done = () => {
      t.settled = true
    }
    p.then(done, done)
    return t
  }

  liveRings(): RingM[] {
    return this.rings.filter((r) => r.real !== null)
  }

  livePools(): PoolM[] {
    return this.pools.filter((p) => p.real !== null)
  }

  // -------------------------------------------------------------------------
  // Interval reasoning about ops the model has not seen complete

  /** Whether the core still counts `op`: yes, no, or maybe. */
  inCore(op: Op): 'yes' | 'no' | 'maybe' {
    if (op.status !== 'pending') return 'no'
    return op.api === 'promise' && !op.maybe && this.reacting === 0 ? 'yes' : 'maybe'
  }

  bufInFlight(b: BufM): 'yes' | 'no' | 'maybe' {
    if (!b.acquired) return 'no'
    if (b.manual) return 'yes'
    let maybe = false
    for (const op of b.ops) {
      const c = this.inCore(op)
      if (c === 'yes') return 'yes'
      if (c === 'maybe') maybe = true
    }
    return maybe ? 'maybe' : 'no'
  }

  bufKernelOps(b: BufM): 'yes' | 'no' | 'maybe' {
    let maybe = false
    for (const op of b.ops) {
      const c = this.inCore(op)
      if (c === 'yes') return 'yes'
      if (c === 'maybe') maybe = true
    }
    return maybe ? 'maybe' : 'no'
  }

  /** The outcome showed that no op on `b` is left in the core. */
  markReaped(b: BufM): void {
    for (const op of b.ops) if (op.status === 'pending') op.status = 'reaped'
  }

  // -------------------------------------------------------------------------
  // Ops

  newOp(
    api: Op['api'],
    kind: Op['kind'],
    pool: PoolM,
    buf: BufM,
    target: Target,
    pos: number,
    len: number,
    boff: number,
    flood = false,
  ): Op {
    const op: Op = {
      id: this.id(), kind, api, ring: pool.ring, pool, buf, view: buf.view, target, pos, len, boff,
      status: 'pending', observable: true, cancelable: false, src: null, srcKnown: null,
      bufConflict: null, fileConflict: null, ambiguous: false, maybe: flood, flood, userData: null, result: null,
      label: '',
    }
    op.label = `op${op.id} (${api} ${kind} ${pool.name}[${buf.index}] ${target.name} pos ${pos} len ${len} boff ${boff})`
    if (kind === 'write') {
      op.src = buf.data.slice(boff, boff + len)
      op.srcKnown = buf.known.slice(boff, boff + len)
    } else {
      op.bufConflict = new Uint8Array(len)
    }
    if (flood) {
      // floodConflicts() made every byte involved unknown already.
      if (kind === 'read') op.bufConflict!.fill(1)
      else op.srcKnown!.fill(0)
    }
    // Buffer bytes touched concurrently.
    for (const o of flood ? [] : buf.ops) {
      if (o.status === 'done') continue
      const ov = overlap(boff, len, o.boff, o.len)
      if (!ov) continue
      if (kind === 'read' && o.kind === 'read') {
        op.bufConflict!.fill(1, ov[0] - boff, ov[1] - boff)
        o.bufConflict!.fill(1, ov[0] - o.boff, ov[1] - o.boff)
      } else if (kind === 'read' && o.kind === 'write') {
        o.srcKnown!.fill(0, ov[0] - o.boff, ov[1] - o.boff)
      } else if (kind === 'write' && o.kind === 'read') {
        op.srcKnown!.fill(0, ov[0] - boff, ov[1] - boff)
      }
    }
    // File bytes touched concurrently.
    if (target.kind === 'file') {
      if (kind === 'write') op.fileConflict = new Uint8Array(len)
      for (const o of target.ops) {
        if (o.status === 'done') continue
        if (kind === 'write' && o.kind === 'write') {
          const ov = overlap(pos, len, o.pos, o.len)
          if (ov) {
            op.fileConflict!.fill(1, ov[0] - pos, ov[1] - pos)
            o.fileConflict!.fill(1, ov[0] - o.pos, ov[1] - o.pos)
          }
        } else if (kind === 'read' && o.kind === 'write') {
          if (o.pos + o.len > pos) op.ambiguous = true
        } else if (kind === 'write' && o.kind === 'read') {
          if (pos + len > o.pos) o.ambiguous = true
        }
      }
      target.ops.add(op)
    }
    if (target.kind === 'pipe') {
      let reads = 0
      let writes = 0
      for (const o of target.ops) if (o.status !== 'done') o.kind === 'read' ? reads++ : writes++
      if ((kind === 'read' && reads > 0) || (kind === 'write' && writes > 0)) target.sequential = false
      if (kind === 'write') target.held += len
      target.ops.add(op)
    }
    buf.ops.add(op)
    pool.ring.ops.add(op)
    pool.submitted++
    return op
  }

  /** Whether a low-level op of `r` may still be in flight (unreaped). */
  manualMaybeInFlight(r: RingM): boolean {
    for (const op of r.manual.values()) if (op.status === 'pending') return true
    return false
  }

  /**
   * A flood of ops on `[off, off + len)` of `b` is coming: whatever is in
   * flight on those bytes, and the bytes, become unknown.
   */
  floodConflicts(b: BufM, off: number, len: number): void {
    for (const o of b.ops) {
      if (o.status === 'done') continue
      const ov = overlap(off, len, o.boff, o.len)
      if (!ov) continue
      if (o.kind === 'read') o.bufConflict!.fill(1, ov[0] - o.boff, ov[1] - o.boff)
      else o.srcKnown!.fill(0, ov[0] - o.boff, ov[1] - o.boff)
    }
    b.known.fill(0, off, off + len)
  }

  /** Unsettled ops a ring may hold (certain and maybe). */
  ringLoad(r: RingM): number {
    let n = 0
    for (const op of r.ops) if (op.status === 'pending') n++
    return n
  }

  /** The model sees `op` complete with `res`. */
  finishOp(op: Op, res: number, how: string): void {
    if (op.status === 'done') fail(`${op.label} completed twice (second time with ${res}, ${how})`)
    if (!Number.isInteger(res)) fail(`${op.label}: result ${show(res)} is not an integer`)
    op.status = 'done'
    op.result = res
    op.buf.ops.delete(op)
    op.ring.ops.delete(op)
    if (op.target.kind === 'file' || op.target.kind === 'pipe') op.target.ops.delete(op)
    op.pool.observedCompleted++
    if (res < 0) op.pool.observedFailed++
    this.log(`  ${op.label} -> ${res < 0 ? errName(res) : res} (${how})`)
    cover(`${op.api} ${op.kind} ${op.target.kind}: ${res < 0 ? errName(res) : res === 0 ? '0 bytes' : 'bytes'}`)
    if (!op.pool.real) cover(`op completed after its pool was dropped${op.ring.real ? '' : ' (ring dropped too)'}`)
    const view = op.view && op.view.length > 0 ? op.view : null
    const { target, len, kind } = op

    if (res < 0) {
      const cancelled = res === ECANCELED || res === EINTR
      if (cancelled && op.cancelable) {
        this.afterFailedOp(op, res)
        return
      }
      let want: number | null = null
      if (target.kind === 'bad') want = EBADF
      else if (target.kind === 'dir') want = kind === 'read' ? EISDIR : EBADF
      if (want === null || res !== want) {
        fail(`${op.label} failed with ${errName(res)}; expected ${want === null ? 'success' : errName(want)}${op.cancelable ? ' or ECANCELED/EINTR' : ''}`)
      }
      this.afterFailedOp(op, res)
      return
    }
    if (res > len) fail(`${op.label} transferred ${res} bytes, more than the ${len} asked for`)
    // The kernel may skip the EISDIR check for a 0-byte transfer.
    if (target.kind === 'dir' && len === 0 && res === 0) return
    switch (target.kind) {
      case 'bad':
      case 'dir':
        fail(`${op.label} succeeded with ${res} on ${target.name}; expected ${kind === 'read' && target.kind === 'dir' ? 'EISDIR' : 'EBADF'}`)
      // eslint-disable-next-line no-fallthrough
      case 'zero':
        // Reads of a character device may be short (the kernel's /dev/zero
        // stops at a page when it should reschedule under IOCB_NOWAIT, and
        // io_uring retries short reads of regular files only).
        if (kind === 'write' ? res !== len : len > 0 && res === 0) {
          fail(`${op.label} on /dev/zero transferred ${res}, expected ${kind === 'write' ? len : `1..${len}`}`)
        }
        if (kind === 'read') this.readIntoBuffer(op, res, view, () => 0)
        if (kind === 'read' && res < len) cover('short read of /dev/zero')
        return
      case 'null':
        if (res !== (kind === 'read' ? 0 : len)) fail(`${op.label} on /dev/null gave ${res}, expected ${kind === 'read' ? 0 : len}`)
        return
      case 'file':
        return kind === 'read' ? this.fileRead(op, target, res, view) : this.fileWrite(op, target, res)
      case 'pipe':
        return kind === 'read' ? this.pipeRead(op, target, res, view) : this.pipeWrite(op, target, res)
    }
  }

  private afterFailedOp(op: Op, res: number): void {
    if (op.target.kind === 'pipe' && op.kind === 'write') op.target.held -= op.len
    // A read that never started leaves the buffer alone; one that was
    // interrupted may have written part of it.
    const started = !(res === EBADF || res === EISDIR || res === ECANCELED)
    if (!started) return
    if (op.kind === 'read') op.buf.known.fill(0, op.boff, op.boff + op.len)
    else if (op.target.kind === 'file') {
      op.target.known.fill(0, op.pos, op.pos + op.len)
      op.target.sizeKnown = false
    } else if (op.target.kind === 'pipe') {
      op.target.opaque = true
      op.target.lost = true
    }
  }

  /** A read of `n` bytes finished: check them where known, then learn the buffer. */
  private readIntoBuffer(op: Op, n: number, view: Uint8Array | null, expected: (i: number) => number | null): void {
    const b = op.buf
    let checked = 0
    for (let i = 0; i < n; i++) {
      const conflict = op.bufConflict![i] === 1
      if (view && !conflict) {
        const want = expected(i)
        const got = view[op.boff + i]
        if (want !== null && got !== want) {
          fail(`${op.label}: byte ${i} of the data read is ${got}, expected ${want} (buffer offset ${op.boff + i})`)
        }
        if (want !== null) checked++
      }
      b.data[op.boff + i] = view ? view[op.boff + i] : 0
      b.known[op.boff + i] = view && !conflict ? 1 : 0
    }
    cover('bytes read and compared', checked)
  }

  private fileRead(op: Op, f: FileM, n: number, view: Uint8Array | null): void {
    if (op.ambiguous || !f.sizeKnown) {
      this.readIntoBuffer(op, n, view, () => null)
      return
    }
    const want = Math.max(0, Math.min(op.len, f.size - op.pos))
    // Interrupted by the ring's close while running in a kernel worker, an
    // op may stop part-way.
    if (n !== want && !(op.cancelable && n < want)) {
      fail(`${op.label} read ${n} bytes; the file has ${f.size} bytes, so expected ${want}`)
    }
    this.readIntoBuffer(op, n, view, (i) => (f.known[op.pos + i] ? f.data[op.pos + i] : null))
  }

  private fileWrite(op: Op, f: FileM, n: number): void {
    if (n !== op.len && !(op.cancelable && n < op.len)) fail(`${op.label} wrote ${n} of ${op.len} bytes to a regular file`)
    if (n < op.len) cover('file write cut short by close')
    if (n === 0) return // a 0-byte write changes nothing, not even the size
    if (op.pos > f.size) {
      f.data.fill(0, f.size, op.pos)
      f.known.fill(1, f.size, op.pos)
    }
    for (let i = 0; i < n; i++) {
      f.data[op.pos + i] = op.src![i]
      f.known[op.pos + i] = op.srcKnown![i] && !op.fileConflict![i] ? 1 : 0
    }
    f.size = Math.max(f.size, op.pos + n)
  }

  private pipeRead(op: Op, p: PipeM, n: number, view: Uint8Array | null): void {
    if (op.len > 0 && n === 0) fail(`${op.label} read 0 bytes from a pipe that has a writer`)
    if (op.len === 0 && n !== 0) fail(`${op.label}: a 0-byte read gave ${n}`)
    p.read += n
    p.held -= n
    if (view && op.bufConflict!.every((c, i) => i >= n || c === 0)) {
      p.pieces.push(view.slice(op.boff, op.boff + n))
    } else {
      p.opaque = true
    }
    this.readIntoBuffer(op, n, view, () => null)
  }

  private pipeWrite(op: Op, p: PipeM, n: number): void {
    if (n !== op.len) fail(`${op.label} wrote ${n} of ${op.len} bytes to a pipe with room`)
    p.written += n
    if (op.srcKnown!.every((k) => k === 1)) p.chunks.push(op.src!.slice())
    else p.opaque = true
  }

  /**
   * `op`'s completion can never be taken (its ring is gone): whatever it did
   * becomes unknown, and nothing waits for it.
   */
  loseOp(op: Op): void {
    op.observable = false
    const t = op.target
    if (t.kind === 'pipe') {
      t.lost = true
      t.opaque = true
    } else if (t.kind === 'file' && op.kind === 'write') {
      t.known.fill(0, op.pos, op.pos + op.len)
      t.sizeKnown = false
    }
    if (op.kind === 'read') op.buf.known.fill(0, op.boff, op.boff + op.len)
    this.log(`  ${op.label} can no longer be observed`)
  }

  /** Processes completions taken from `r` (takeCompletions or completions()). */
  takeManual(r: RingM, list: unknown, how: string): void {
    if (!Array.isArray(list)) fail(`${how} gave ${show(list)}, not an array`)
    for (const c of list as Completion[]) {
      if (typeof c.userData !== 'bigint') fail(`${how}: userData ${show(c.userData)} is not a bigint`)
      const op = r.manual.get(c.userData)
      if (!op) fail(`${how} gave a completion no submission of ${r.name} is waiting for: ${show(c)}`)
      r.manual.delete(c.userData)
      if (c.bufferIndex !== op.buf.index) fail(`${how}: ${op.label} completed with bufferIndex ${c.bufferIndex}`)
      if (c.op !== op.kind) fail(`${how}: ${op.label} completed as a ${c.op}`)
      if (typeof c.flags !== 'number') fail(`${how}: flags ${show(c.flags)}`)
      this.finishOp(op, c.result, how)
    }
  }

  // -------------------------------------------------------------------------
  // Checks after every command

  check(where: string): void {
    if (this.failures.length > 0) fail(this.failures.join('\n'))
    for (const r of this.rings) this.checkRing(r, where)
    for (const p of this.pools) this.checkPool(p, where)
  }

  private checkRing(r: RingM, where: string): void {
    let min = 0
    let max = 0
    for (const op of r.ops) {
      const c = this.inCore(op)
      if (c === 'yes') min++
      if (c !== 'no') max++
    }
    if (r.closed) {
      for (const op of r.ops) if (op.status === 'pending') fail(`${where}: ${op.label} is still pending on closed ${r.name}`)
    }
    // completions() resolves once no low-level op is in flight.
    if (!this.manualMaybeInFlight(r)) {
      for (const w of r.waiters) {
        if (!w.settled) fail(`${where}: completions() #${w.id} of ${r.name} is still waiting with no low-level operation in flight`)
      }
    }
    const ring = r.real
    if (!ring) return
    const n = ring.inFlightCount
    if (!(n >= min && n <= max)) fail(`${where}: ${r.name}.inFlightCount is ${n}, expected ${min === max ? min : `${min}..${max}`}`)
    if (ring.closed !== r.closed) fail(`${where}: ${r.name}.closed is ${ring.closed}`)
  }

  private checkPool(p: PoolM, where: string): void {
    const pool = p.real
    if (!pool) {
      // Views outlive their pool: they work until the pool or ring is closed.
      this.checkViews(p, where)
      return
    }
    const closed = p.closed || p.ring.closed
    if (pool.closed !== closed) fail(`${where}: ${p.name}.closed is ${pool.closed}, expected ${closed}`)
    let fMin = 0
    let fMax = 0
    let kMin = 0
    let kMax = 0
    for (const i of p.acquired) {
      const b = p.bufs[i]
      const s = this.bufInFlight(b)
      if (s === 'yes') fMin++
      if (s !== 'no') fMax++
    }
    for (const b of p.bufs) {
      for (const op of b.ops) {
        if (op.pool !== p) continue
        const c = this.inCore(op)
        if (c === 'yes') kMin++
        if (c !== 'no') kMax++
      }
    }
    // Ops of released buffers can still be unobserved; count the pool's ops.
    const s = pool.stats()
    const available = p.count - p.acquired.size
    const expect = (name: string, got: number, lo: number, hi = lo) => {
      if (!(got >= lo && got <= hi)) fail(`${where}: ${p.name} ${name} is ${got}, expected ${lo === hi ? lo : `${lo}..${hi}`}`)
    }
    expect('totalCount', pool.totalCount, p.count)
    expect('stats().totalCount', s.totalCount, p.count)
    expect('bufferSize', pool.bufferSize, p.size)
    expect('stats().bufferSize', s.bufferSize, p.size)
    expect('availableCount', pool.availableCount, available)
    expect('stats().availableCount', s.availableCount, available)
    expect('inFlightCount', pool.inFlightCount, fMin, fMax)
    expect('stats().inFlightCount', s.inFlightCount, pool.inFlightCount)
    expect('acquiredCount', pool.acquiredCount, p.count - available - pool.inFlightCount)
    expect('stats().acquiredCount', s.acquiredCount, pool.acquiredCount)
    if (pool.isExhausted !== (available === 0)) fail(`${where}: ${p.name}.isExhausted is ${pool.isExhausted} with ${available} available`)
    expect('stats().acquires', s.acquires, p.acquires)
    expect('stats().exhausted', s.exhausted, p.exhausted)
    expect('stats().releases', s.releases, p.releases)
    expect('stats().submitted', s.submitted, p.submitted)
    expect('stats().kernelOpCount', s.kernelOpCount, kMin, kMax)
    expect('stats().completed', s.completed, s.submitted - s.kernelOpCount)
    let unobservedDone = 0
    for (const b of p.bufs) for (const op of b.ops) if (op.pool === p && op.status !== 'done' && this.inCore(op) !== 'yes') unobservedDone++
    expect('stats().failed', s.failed, p.observedFailed, p.observedFailed + unobservedDone)
    // Views and get().
    this.checkViews(p, where)
    const probe = [...p.acquired].slice(0, 64)
    for (let i = 0; i < Math.min(3, p.count); i++) probe.push(i)
    for (const i of probe) {
      const b = p.bufs[i]
      const r = thrownCode(() => pool.get(i))
      const want = closed ? 'ERR_ZCIO_CLOSED' : b.acquired ? undefined : 'ERR_ZCIO_NOT_ACQUIRED'
      if (r.code !== want) fail(`${where}: ${p.name}.get(${i}) ${r.threw ? `threw ${r.code}` : 'returned a view'}, expected ${want ?? 'a view'}`)
      if (!r.threw) {
        const v = pool.get(i)
        if (b.view && v !== b.view) fail(`${where}: ${p.name}.get(${i}) is not the view acquire() gave`)
      }
    }
  }

  /** Views have length 0 once their pool or ring was closed, the buffer size before. */
  private checkViews(p: PoolM, where: string): void {
    const closed = p.closed || p.ring.closed
    for (const b of p.bufs) {
      if (!b.view) continue
      if (!p.real && closed && b.view.length === 0) cover('view of a dropped pool emptied by close')
      const want = closed ? 0 : p.size
      if (b.view.length !== want) {
        fail(`${where}: the view of ${p.real ? '' : 'dropped '}${p.name}[${b.index}] has length ${b.view.length}, expected ${want}${closed ? ' (closed)' : ''}`)
      }
    }
  }

  // -------------------------------------------------------------------------
  // Waiting

  /** Ops that must complete without any further command. */
  mustSettle(): Op[] {
    const out: Op[] = []
    for (const r of this.rings) {
      for (const op of r.ops) {
        if (op.status === 'done' || !op.observable) continue
        if (op.target.kind === 'pipe' && op.kind === 'read') continue
        // A batch settles as a whole: one pending pipe read holds it.
        out.push(op)
      }
    }
    return out.filter((op) => !(op.api === 'batch' && this.batchBlocked(op)))
  }

  private batchBlocked(op: Op): boolean {
    const all = this.batchOf.get(op)
    return all !== undefined && all.some((o) => o.status !== 'done' && o.target.kind === 'pipe' && o.kind === 'read')
  }

  /** Waits until every op that must complete has been seen completing. */
  async settle(timeoutMs = SETTLE_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (let round = 0; ; round++) {
      this.takeAll()
      if (this.failures.length > 0) return
      const left = this.mustSettle()
      if (left.length === 0) return
      if (Date.now() > deadline) {
        fail(`hang: after ${timeoutMs} ms these operations have not completed:\n  ${left.map((o) => o.label).join('\n  ')}`)
      }
      if (round < 50) await tick()
      else await sleep(2)
    }
  }

  // -------------------------------------------------------------------------
  // End of a run

  /** Feeds pipes until no read waits on them, so nothing is left pending. */
  async feedPipes(): Promise<void> {
    for (let round = 0; round < 200; round++) {
      this.takeAll()
      let need = false
      for (const p of this.pipes) {
        const waiting = [...p.ops].filter((o) => o.kind === 'read' && o.status === 'pending' && o.observable)
        if (waiting.length === 0) continue
        need = true
        const n = Math.min(PIPE_IO_MAX, Math.max(1, PIPE_ROOM - p.held))
        this.pipeWriteSync(p, n, round)
      }
      if (!need) break
      await tick()
      await sleep(1)
    }
    if (this.failures.length > 0) return
    for (const p of this.pipes) {
      if ([...p.ops].some((o) => o.kind === 'read' && o.status === 'pending' && o.observable)) {
        fail(`reads of ${p.name} still pending after feeding it`)
      }
      // Reads nobody can observe any more (their ring is gone) must still
      // end, or their ring would keep the process alive: give each its fill.
      const lost = [...p.ops].filter((o) => o.kind === 'read' && o.status === 'pending')
      if (lost.length > 0) {
        this.pipeWriteSync(p, lost.reduce((a, o) => a + o.len, 0), 0)
        await sleep(20)
      }
    }
  }

  /** Takes the completions of low-level ops from every ring still held. */
  takeAll(): void {
    for (const r of this.rings) {
      if (r.real && r.manual.size > 0) this.takeManual(r, r.real.takeCompletions(), `${r.name}.takeCompletions()`)
    }
  }

  pipeWriteSync(p: PipeM, len: number, seed: number): number {
    const chunk = new Uint8Array(len)
    for (let i = 0; i < len; i++) chunk[i] = (seed * 31 + i * 13 + p.written) & 0xff
    let n: number
    try {
      n = fs.writeSync(p.fd, chunk)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return 0
      throw e
    }
    if (n !== len) fail(`writing ${len} bytes to ${p.name} wrote ${n}`)
    for (const o of p.ops) if (o.kind === 'write' && o.status !== 'done') p.sequential = false
    p.chunks.push(chunk)
    p.written += n
    p.held += n
    this.log(`  fs.writeSync(${p.name}, ${len} bytes)`)
    return n
  }

  /** Reads what is left in a pipe, checking it against what went in. */
  drainPipe(p: PipeM): void {
    const pendingReads = [...p.ops].some((o) => o.kind === 'read' && o.status !== 'done')
    if (pendingReads) p.sequential = false
    const got: Buffer[] = []
    const scratch = Buffer.alloc(65536)
    for (;;) {
      let n: number
      try {
        n = fs.readSync(p.fd, scratch)
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break
        throw e
      }
      if (n === 0) break
      got.push(Buffer.from(scratch.subarray(0, n)))
    }
    const drained = Buffer.concat(got)
    p.pieces.push(new Uint8Array(drained))
    p.read += drained.length
    p.held -= drained.length
    this.log(`  drained ${drained.length} bytes from ${p.name}`)
    const quiet = ![...p.ops].some((o) => o.status !== 'done')
    if (!quiet || p.lost) return
    if (p.read !== p.written) fail(`${p.name}: ${p.written} bytes went in, ${p.read} came out`)
    if (p.opaque) return
    const inBytes = Buffer.concat(p.chunks)
    const outBytes = Buffer.concat(p.pieces)
    cover(`pipe contents compared (${p.sequential ? 'in order' : 'as a multiset'})`)
    if (p.sequential) {
      if (!inBytes.equals(outBytes)) fail(`${p.name}: the bytes read differ from the bytes written (in order)`)
    } else {
      const h = new Int32Array(256)
      for (const x of inBytes) h[x]++
      for (const x of outBytes) h[x]--
      if (h.some((x) => x !== 0)) fail(`${p.name}: the bytes read are not the bytes written`)
    }
    // Start over from an empty pipe.
    p.chunks = []
    p.pieces = []
    p.written = 0
    p.read = 0
    p.held = 0
    p.sequential = true
  }

  checkFiles(): void {
    for (const f of this.files) {
      if ([...f.ops].some((o) => o.kind === 'write')) continue
      const real = fs.readFileSync(f.path)
      cover('file contents compared')
      if (f.sizeKnown && real.length !== f.size) fail(`${f.name} has ${real.length} bytes, the model ${f.size}`)
      const n = Math.min(real.length, f.size)
      for (let i = 0; i < n; i++) {
        if (f.known[i] && real[i] !== f.data[i]) fail(`${f.name}: byte ${i} is ${real[i]}, expected ${f.data[i]}`)
      }
    }
  }

  /** Ends the run: everything must settle, data must match. */
  async finish(): Promise<void> {
    this.log('-- finish')
    await this.settle()
    await this.feedPipes()
    await this.settle()
    for (const r of this.rings) {
      if (r.real && !r.closed) this.closeRing(r)
    }
    await tick()
    for (const r of this.rings) {
      if (r.real) this.takeManual(r, r.real.takeCompletions(), `${r.name}.takeCompletions() after close`)
    }
    this.check('finish')
    for (const r of this.rings) {
      for (const op of r.ops) if (op.observable && op.status !== 'done') fail(`finish: ${op.label} never completed`)
    }
    for (const p of this.pipes) this.drainPipe(p)
    this.checkFiles()
    // Every promise handed out settles.
    const deadline = Date.now() + SETTLE_TIMEOUT_MS
    for (;;) {
      const left = this.tracked.filter((t) => !t.settled)
      if (left.length === 0) break
      if (Date.now() > deadline) fail(`hang: these promises never settled:\n  ${left.map((t) => t.label).join('\n  ')}`)
      await sleep(5)
    }
    if (this.failures.length > 0) fail(this.failures.join('\n'))
  }

  /** Releases what the run holds, whatever state a failure left it in. */
  async cleanup(): Promise<void> {
    try {
      // Pending pipe reads would keep the process alive: feed them.
      for (let round = 0; round < 20; round++) {
        let pending = false
        for (const p of this.pipes) {
          if ([...p.ops].some((o) => o.kind === 'read' && o.status === 'pending')) {
            pending = true
            try {
              fs.writeSync(p.fd, Buffer.alloc(PIPE_IO_MAX, 1))
            } catch {
              // Full: the reads have data.
            }
          }
        }
        for (const r of this.rings) {
          try {
            r.real?.close()
          } catch {
            // Reported by the run already.
          }
        }
        if (!pending) break
        await sleep(5)
      }
      await tick()
      for (const p of this.pipes) {
        const scratch = Buffer.alloc(65536)
        try {
          while (fs.readSync(p.fd, scratch) > 0);
        } catch {
          // EAGAIN: empty.
        }
      }
    } finally {
      for (const f of this.files) fs.closeSync(f.fd)
      for (const t of [this.zero, this.null, this.dir]) fs.closeSync(t.fd)
      fs.rmSync(this.runDir, { recursive: true, force: true })
      for (const r of this.rings) r.real = null
      for (const p of this.pools) p.real = null
      this.rings = []
      this.pools = []
    }
  }

  /**
   * After a run nothing holds its rings and pools: once collected, the rings
   * that were dropped without close() must be gone too (their driver closes
   * them when the last JS object goes and nothing is in flight).
   */
  async checkReleased(): Promise<void> {
    if (!this.session.hasGc) return
    for (let k = 0; k < 50; k++) {
      if (ioUringFds() <= this.session.ringFds) return
      globalThis.gc!()
      await tick()
      await sleep(k < 10 ? 1 : 10)
    }
    const n = ioUringFds() - this.session.ringFds
    fail(`${n} io_uring instance(s) still open after the run, with every ring and pool dropped and collected`)
  }

  // -------------------------------------------------------------------------
  // Actions shared by commands

  closeRing(r: RingM): void {
    const ring = r.real!
    const live = [...r.ops].filter((o) => o.status === 'pending').length
    cover(live > 0 ? 'ring closed with ops in flight' : 'ring closed idle')
    for (const op of r.ops) {
      if (op.status === 'pending') {
        op.status = 'reaped'
        op.cancelable = true
      }
    }
    const res = thrownCode(() => ring.close())
    if (res.threw) fail(`${r.name}.close() threw ${res.code}: ${(res.error as Error).message}`)
    this.log(`${r.name}.close()`)
    r.closed = true
    r.table = []
    for (const p of r.pools) if (!p.closed) p.base = null
  }

  /** A fd number that is not open now (checked), for EBADF. */
  unusedFd(v: number): number {
    for (let k = 0; k < 100; k++) {
      const fd = 19000 + ((v + k) % 900)
      try {
        fs.fstatSync(fd)
      } catch {
        return fd
      }
    }
    return 2 ** 31 - 1
  }

  /** Opens and closes a file, returning the fd number it had. */
  closedFd(): number {
    const fd = fs.openSync(path.join(this.runDir, 'closed'), 'w')
    fs.closeSync(fd)
    this.closedFds.push(fd)
    return fd
  }

  tableAlloc(r: RingM, count: number): { certain: boolean; fits: boolean; base: number | null } {
    if (r.table === null) return { certain: false, fits: true, base: null }
    const firstFit = (ranges: { start: number; len: number }[]) => {
      let start = 0
      for (const g of [...ranges].sort((a, b) => a.start - b.start)) {
        if (g.start - start >= count) return start
        start = g.start + g.len
      }
      return TABLE_SIZE - start >= count ? start : null
    }
    const all = firstFit(r.table)
    const some = firstFit(r.table.filter((g) => !g.maybeFreed))
    if (all !== null && all === some) return { certain: true, fits: true, base: all }
    if (some === null) return { certain: true, fits: false, base: null }
    return { certain: false, fits: all !== null, base: null }
  }
}
