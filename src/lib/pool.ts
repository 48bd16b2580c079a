// RegisteredBufferPool: page-aligned buffers registered once with a ring as
// io_uring fixed buffers, read and written by the kernel and by JavaScript in
// place. Buffer states and ranges are checked by the core; this layer checks
// argument shapes, keeps the views and counts on its side of the boundary,
// and turns operations into promises.

import { inspect } from 'node:util'
import { native, type NativePool } from './binding.js'
import { invalidArgType, invalidArgValue, outOfRange, zcioError } from './errors.js'
import { type Completer, type OpKind, Ring, ringInternals } from './ring.js'
import { guardMethods } from './brand.js'
import { validateFd, validateIndex, validateInteger, validatePosition, validateTypedArray, MAX_U32 } from './validate.js'

let nativeOf: (pool: RegisteredBufferPool) => NativePool

/** The binding object of `pool` (for this package's classes only). */
export function poolNative(pool: RegisteredBufferPool): NativePool {
  return nativeOf(pool)
}

/** A buffer taken from a pool. */
export interface AcquiredBuffer {
  /** The buffer's index in the pool: what the other methods take. */
  index: number
  /** A `Uint8Array` over the registered memory (no copy); length 0 once the pool is closed. */
  buffer: Uint8Array
}

/** A snapshot of a pool's counts and cumulative counters. */
export interface PoolStats {
  /** Usable bytes per buffer. */
  bufferSize: number
  /** Buffers in the pool. */
  totalCount: number
  /** Buffers free to acquire. */
  availableCount: number
  /** Buffers acquired and not in flight. */
  acquiredCount: number
  /** Buffers in flight (kernel operations pending, or marked by `markInFlight`). */
  inFlightCount: number
  /** Kernel operations outstanding on the pool's buffers. */
  kernelOpCount: number
  /** Successful `acquire`/`tryAcquire` calls since the pool was made. */
  acquires: number
  /** Acquisitions refused because every buffer was in use. */
  exhausted: number
  /** Releases. */
  releases: number
  /** Kernel operations submitted. */
  submitted: number
  /** Kernel operations completed (successfully or not). */
  completed: number
  /** Kernel operations that completed with an error. */
  failed: number
}

interface FastCalls {
  acquire(): number
  tryAcquire(): number
  release(index: number): void
  readFixed(fd: number, index: number, position: number, length: number, bufferOffset?: number): number
  writeFixed(fd: number, index: number, position: number, length: number, bufferOffset?: number): number
}

// Indices of a pool's published counts and its state bytes, from the binding
// (the core's `pool_counts`, `ring_counts` and `buffer_state`).
const C = {
  total: native.POOL_COUNT_TOTAL,
  available: native.POOL_COUNT_AVAILABLE,
  acquired: native.POOL_COUNT_ACQUIRED,
  inFlight: native.POOL_COUNT_IN_FLIGHT,
  kernelOps: native.POOL_COUNT_KERNEL_OPS,
  acquires: native.POOL_COUNT_ACQUIRES,
  exhausted: native.POOL_COUNT_EXHAUSTED,
  releases: native.POOL_COUNT_RELEASES,
  submitted: native.POOL_COUNT_SUBMITTED,
  completed: native.POOL_COUNT_COMPLETED,
  failed: native.POOL_COUNT_FAILED,
  closed: native.POOL_COUNT_CLOSED,
} as const
const RING_CLOSED = native.RING_COUNT_CLOSED
const FREE = native.BUFFER_FREE
const READ: OpKind = 0
const WRITE: OpKind = 1
const MAX_BUFFER_SIZE = native.POOL_MAX_BUFFER_SIZE
const MAX_BUFFERS = native.POOL_MAX_BUFFERS
// A lean readFixed/writeFixed done in the call returns -1 - DONE_BASE - result.
const DONE_BASE = native.FIXED_DONE_BASE

/**
 * Page-aligned buffers registered once with a ring as io_uring fixed buffers
 * (Linux 5.13+), read and written by the kernel with `readFixed`/`writeFixed`
 * and by JavaScript in place through `Uint8Array` views (no copy).
 *
 * A buffer is free, acquired, or in flight (lent to the kernel). Releasing or
 * closing while a buffer is in flight throws `ERR_ZCIO_BUFFER_IN_FLIGHT`.
 * After `close()` (of the pool or its ring) every view has length 0.
 * Registered memory counts against `RLIMIT_MEMLOCK` (`ulimit -l`).
 */
export class RegisteredBufferPool {
  readonly #native: NativePool

  static {
    nativeOf = (pool) => {
      if (typeof pool !== 'object' || pool === null || !(#native in pool)) throw invalidArgType('pool', 'an instance of RegisteredBufferPool', pool)
      return pool.#native
    }
    guardMethods(RegisteredBufferPool, 'RegisteredBufferPool', (p) => #native in (p as object), [
      'readFixed',
      'writeFixed',
      'readFixedBatch',
      'writeFixedBatch',
    ])
  }
  readonly #fast: FastCalls
  readonly #completer: Completer
  readonly #counts: Float64Array
  readonly #ringCounts: Float64Array
  readonly #states: Uint8Array
  readonly #views: (Uint8Array | undefined)[]
  readonly #bufferSize: number

  /**
   * Allocates `bufferCount` buffers of `bufferSize` bytes and registers them.
   *
   * Throws `ERR_INVALID_ARG_TYPE` for a non-number, `ERR_OUT_OF_RANGE` for a
   * negative or non-integer size, `ERR_INVALID_ARG_VALUE` for 0 or above the
   * limits (1 GiB per buffer, 16384 buffers), `ENOMEM` (naming `ulimit -l`)
   * when the registration exceeds `RLIMIT_MEMLOCK`, `ERR_ZCIO_TABLE_FULL`
   * when the ring's 16384-entry table is full, `ERR_ZCIO_CLOSED` when the
   * ring is closed.
   */
  constructor(ring: Ring, bufferSize: number, bufferCount: number) {
    if (!(ring instanceof Ring)) throw invalidArgType('ring', 'an instance of Ring', ring)
    validateInteger(bufferSize, 'bufferSize', 0, MAX_U32)
    validateInteger(bufferCount, 'bufferCount', 0, MAX_U32)
    if (bufferSize === 0 || bufferSize > MAX_BUFFER_SIZE) {
      throw invalidArgValue('bufferSize', bufferSize, `must be between 1 and ${MAX_BUFFER_SIZE} (1 GiB)`)
    }
    if (bufferCount === 0 || bufferCount > MAX_BUFFERS) {
      throw invalidArgValue('bufferCount', bufferCount, `must be between 1 and ${MAX_BUFFERS}`)
    }
    const r = ringInternals(ring)
    const pool = new native.RegisteredBufferPool(r.native, bufferSize, bufferCount)
    this.#native = pool
    this.#fast = pool.fastCalls()
    this.#completer = r.completer
    this.#counts = pool.counts()
    this.#ringCounts = r.counts
    this.#states = pool.states()
    this.#views = new Array<Uint8Array | undefined>(bufferCount)
    this.#bufferSize = bufferSize
  }

  /** The view of buffer `index`, made once and cached. */
  #view(index: number): Uint8Array {
    let v = this.#views[index]
    if (v === undefined) {
      v = this.#native.view(index)
      this.#views[index] = v
    } else if (v.byteLength === 0 && !this.closed) {
      // Its ArrayBuffer was transferred away (ArrayBuffer.prototype.transfer,
      // postMessage with a transfer list): the memory now belongs to that
      // buffer, which close() can't reach. Refuse rather than make a second
      // view of the same memory.
      throw zcioError(
        'ERR_ZCIO_VIEW_DETACHED',
        `the view of buffer ${index} was detached (its ArrayBuffer was transferred); it can no longer be used`,
      )
    }
    return v
  }

  /**
   * Takes a free buffer: `{ index, buffer }`. Throws `ERR_ZCIO_POOL_EXHAUSTED`
   * when none is free, `ERR_ZCIO_CLOSED` after `close()`.
   */
  acquire(): AcquiredBuffer {
    const index = this.#fast.acquire()
    return { index, buffer: this.#acquiredView(index) }
  }

  /** The view of a buffer just acquired; gives the buffer back if it can't. */
  #acquiredView(index: number): Uint8Array {
    try {
      return this.#view(index)
    } catch (err) {
      this.#fast.release(index)
      throw err
    }
  }

  /** Takes a free buffer, or returns `null` when none is free. */
  tryAcquire(): AcquiredBuffer | null {
    const index = this.#fast.tryAcquire()
    if (index < 0) return null
    return { index, buffer: this.#acquiredView(index) }
  }

  /**
   * Returns an acquired buffer to the pool. Throws `ERR_ZCIO_NOT_ACQUIRED`
   * (double release), `ERR_ZCIO_BUFFER_IN_FLIGHT`, `ERR_OUT_OF_RANGE`.
   */
  release(index: number): void {
    validateIndex(index)
    this.#fast.release(index)
  }

  /**
   * The view of an acquired buffer (the same `Uint8Array` `acquire` gave).
   * While the buffer is in flight the kernel may be writing it. Throws
   * `ERR_ZCIO_NOT_ACQUIRED`, `ERR_OUT_OF_RANGE`, `ERR_ZCIO_CLOSED`.
   */
  get(index: number): Uint8Array {
    validateIndex(index)
    if (this.closed) throw zcioError('ERR_ZCIO_CLOSED', 'the pool is closed')
    if (index >= this.#states.length) {
      throw outOfRange('index', `>= 0 && < ${this.#states.length} (the pool's buffer count)`, index)
    }
    if (this.#states[index] === FREE) throw zcioError('ERR_ZCIO_NOT_ACQUIRED', `buffer ${index} is not acquired`)
    return this.#view(index)
  }

  /** Marks an acquired buffer in flight (lent out); `release` refuses it until `completeInFlight`. */
  markInFlight(index: number): void {
    validateIndex(index)
    this.#native.markInFlight(index)
  }

  /**
   * Ends an in-flight mark (from `markInFlight` or `submitReadFixed` /
   * `submitWriteFixed`). Throws `ERR_ZCIO_BUFFER_IN_FLIGHT` while a kernel
   * operation on it has not completed, `ERR_ZCIO_NOT_IN_FLIGHT` otherwise.
   */
  completeInFlight(index: number): void {
    validateIndex(index)
    this.#native.completeInFlight(index)
  }

  #queue(kind: OpKind, fd: unknown, index: unknown, position: unknown, length: unknown, bufferOffset: unknown): Promise<number> {
    try {
      validateFd(fd)
      validateIndex(index)
      validatePosition(position)
      validateInteger(length, 'length', 0, MAX_U32)
      if (bufferOffset === undefined) bufferOffset = 0
      else validateInteger(bufferOffset, 'bufferOffset', 0, MAX_U32)
      const slot =
        kind === READ
          ? this.#fast.readFixed(fd, index, position, length, bufferOffset as number)
          : this.#fast.writeFixed(fd, index, position, length, bufferOffset as number)
      if (slot < 0) return this.#completer.now(-1 - DONE_BASE - slot, kind)
      return this.#completer.track(slot, kind)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * Reads `length` bytes at file `position` of `fd` into buffer `index` (at
   * `bufferOffset`, default 0) with `IORING_OP_READ_FIXED`. The buffer is in
   * flight until the promise settles; it resolves with the bytes read and
   * rejects with a Node-style error (`code`, `errno`, `syscall: 'read'`).
   * Never throws: bad arguments reject too.
   */
  readFixed(fd: number, index: number, position: number, length: number, bufferOffset?: number): Promise<number> {
    return this.#queue(READ, fd, index, position, length, bufferOffset)
  }

  /**
   * Writes `length` bytes of buffer `index` (from `bufferOffset`) at file
   * `position` of `fd` with `IORING_OP_WRITE_FIXED`; as `readFixed`.
   */
  writeFixed(fd: number, index: number, position: number, length: number, bufferOffset?: number): Promise<number> {
    return this.#queue(WRITE, fd, index, position, length, bufferOffset)
  }

  #submit(write: boolean, fd: unknown, index: unknown, position: unknown, length: unknown, bufferOffset: unknown): bigint {
    validateFd(fd)
    validateIndex(index)
    validatePosition(position)
    validateInteger(length, 'length', 0, MAX_U32)
    if (bufferOffset !== undefined) validateInteger(bufferOffset, 'bufferOffset', 0, MAX_U32)
    const off = (bufferOffset as number | undefined) ?? 0
    return write
      ? this.#native.submitWriteFixed(fd, index, position, length, off)
      : this.#native.submitReadFixed(fd, index, position, length, off)
  }

  /**
   * Low level: queues a READ_FIXED and returns its `userData`. The buffer
   * stays in flight until the caller reaps the completion
   * (`ring.takeCompletions()` / `ring.completions()`) and calls
   * `completeInFlight(index)`. Throws on bad arguments.
   */
  submitReadFixed(fd: number, index: number, position: number, length: number, bufferOffset?: number): bigint {
    return this.#submit(false, fd, index, position, length, bufferOffset)
  }

  /** Low level: queues a WRITE_FIXED; as `submitReadFixed`. */
  submitWriteFixed(fd: number, index: number, position: number, length: number, bufferOffset?: number): bigint {
    return this.#submit(true, fd, index, position, length, bufferOffset)
  }

  #batch(write: boolean, fd: unknown, indices: unknown, positions: unknown, lengths: unknown): Promise<Int32Array> {
    try {
      validateFd(fd)
      validateTypedArray(indices, 'indices', Uint32Array)
      validateTypedArray(positions, 'positions', Float64Array)
      validateTypedArray(lengths, 'lengths', Uint32Array)
      return write
        ? this.#native.writeFixedBatch(fd, indices, positions, lengths)
        : this.#native.readFixedBatch(fd, indices, positions, lengths)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  /**
   * Reads many blocks in one call: element `k` reads `lengths[k]` bytes at
   * file position `positions[k]` into buffer `indices[k]`. Resolves once all
   * are done with an `Int32Array` of results: bytes read, or `-errno` for an
   * element that failed. Every element is checked before anything is queued
   * (a bad one rejects and queues nothing). At most 16384 elements per call
   * (`ERR_OUT_OF_RANGE` beyond): queueing is synchronous and must not hold
   * the event loop.
   */
  readFixedBatch(fd: number, indices: Uint32Array, positions: Float64Array, lengths: Uint32Array): Promise<Int32Array> {
    return this.#batch(false, fd, indices, positions, lengths)
  }

  /** Writes many blocks in one call; as `readFixedBatch`. */
  writeFixedBatch(fd: number, indices: Uint32Array, positions: Float64Array, lengths: Uint32Array): Promise<Int32Array> {
    return this.#batch(true, fd, indices, positions, lengths)
  }

  /** Usable bytes per buffer. */
  get bufferSize(): number {
    return this.#bufferSize
  }

  /** Buffers in the pool. */
  get totalCount(): number {
    return this.#counts[C.total]
  }

  /** Buffers free to acquire. */
  get availableCount(): number {
    return this.#counts[C.available]
  }

  /** Buffers acquired and not in flight. */
  get acquiredCount(): number {
    return this.#counts[C.acquired]
  }

  /** Buffers in flight. */
  get inFlightCount(): number {
    return this.#counts[C.inFlight]
  }

  /** Whether no buffer is free. */
  get isExhausted(): boolean {
    return this.#counts[C.available] === 0
  }

  /** Whether the pool (or its ring) is closed. */
  get closed(): boolean {
    return this.#counts[C.closed] === 1 || this.#ringCounts[RING_CLOSED] === 1
  }

  /** Counts and cumulative counters. */
  stats(): PoolStats {
    const c = this.#counts
    return {
      bufferSize: this.#bufferSize,
      totalCount: c[C.total],
      availableCount: c[C.available],
      acquiredCount: c[C.acquired],
      inFlightCount: c[C.inFlight],
      kernelOpCount: c[C.kernelOps],
      acquires: c[C.acquires],
      exhausted: c[C.exhausted],
      releases: c[C.releases],
      submitted: c[C.submitted],
      completed: c[C.completed],
      failed: c[C.failed],
    }
  }

  /**
   * Unregisters the buffers and detaches every view (length 0). Throws
   * `ERR_ZCIO_BUFFER_IN_FLIGHT` while any buffer is in flight. Calling it
   * again does nothing.
   */
  close(): void {
    this.#native.close()
  }

  /** `close()`, for `using pool = new RegisteredBufferPool(...)`. */
  [Symbol.dispose](): void {
    this.close()
  }

  [inspect.custom](depth: number, options: object): string {
    const { bufferSize, totalCount, availableCount, acquiredCount, inFlightCount } = this.stats()
    const state = { bufferSize, totalCount, availableCount, acquiredCount, inFlightCount, closed: this.closed }
    return `RegisteredBufferPool ${inspect(state, { ...options, depth: depth < 0 ? 0 : depth })}`
  }
}
