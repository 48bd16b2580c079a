// Ring: io_uring (or epoll and a thread pool) driven by the event loop of the
// thread that made it.
// This layer keeps the promise of every readFixed/writeFixed in a table
// indexed by the operation's slot; the binding settles them in one call per
// round of completions (see DESIGN.md, "The completion path").

import { inspect } from 'node:util'
import { native, type NativeCompletion, type NativeRing, type NativeRingFeatures } from './binding.js'
import { errnoError, invalidArgType, invalidArgValue, zcioError } from './errors.js'
import { validateInteger, validateObject } from './validate.js'
import { guardMethods } from './brand.js'

/**
 * The backend asked for in `new Ring({ backend })`: `'auto'` (io_uring where
 * it sets up and supports every operation zcio uses, else epoll),
 * `'io_uring'` (or `ERR_ZCIO_URING_UNAVAILABLE` saying why not) or `'epoll'`.
 */
export type BackendChoice = 'auto' | 'io_uring' | 'epoll'

/** The backend a ring runs on (`ring.backend`, `probe().backend`). */
export type BackendKind = 'io_uring' | 'epoll'

const BACKENDS: readonly string[] = ['auto', 'io_uring', 'epoll']

/** Options of `new Ring()`. */
export interface RingOptions {
  /**
   * Which backend to run on: `'auto'` (the default), `'io_uring'` or
   * `'epoll'`. The environment variable `ZCIO_BACKEND` (`epoll`,
   * `io_uring`; `auto` or empty: no effect), read at each `new Ring()`,
   * overrides it for the whole process. `ring.backend` says which one the
   * ring got; `probe().backend` says which one a default ring gets.
   */
  backend?: BackendChoice
  /**
   * Threads of the epoll backend for file reads and writes that would block
   * (started on demand), an integer from 1 to 64. Default 4. Unused on
   * io_uring.
   */
  workers?: number
  /** Submission-queue entries, 1 to 32768 (rounded up to a power of two). Default 256. */
  entries?: number
  /**
   * Use a kernel submission thread (`IORING_SETUP_SQPOLL`): `true` for a
   * 1000 ms idle time, or the idle time in milliseconds. It costs a kernel
   * thread that spins while busy. `probe().sqpoll` says whether this
   * process may have one. io_uring only: a ring that would run on epoll
   * throws `ERR_ZCIO_UNSUPPORTED` naming the backend. Default `false`.
   */
  sqpoll?: boolean | number
  /**
   * Busy polling, in microseconds, 0 to 100000: after a round of
   * completions, while operations are in flight, the ring spins on its
   * shared memory for up to this long before it lets the event loop sleep.
   * A reply that comes within that time is handled without a wake-up, which
   * cuts request/response latency, at the price of a CPU busy for that long
   * (and of other callbacks of this thread waiting as long). On io_uring
   * it needs `features.taskrunFlag` (Linux 5.19); on epoll the ring spins
   * on the epoll instance instead (a `poll(2)` that does not wait). Default
   * 0 (off).
   */
  busyPoll?: number
}

/** The setup flags the kernel accepted for a ring. */
export type RingFeatures = NativeRingFeatures

/** A completion of a low-level `submitReadFixed` / `submitWriteFixed`. */
export type Completion = NativeCompletion

/** What an operation in the promise table was: 0 read, 1 write. */
export type OpKind = 0 | 1

const SYSCALL = ['read', 'write'] as const

// Indices of the ring's published counts, from the binding (the core's `ring_counts`).
const IN_FLIGHT = native.RING_COUNT_IN_FLIGHT
const CLOSED = native.RING_COUNT_CLOSED
const MAX_ENTRIES = native.RING_MAX_ENTRIES

type Resolve = (bytes: number) => void
type Reject = (err: Error) => void

/**
 * What the layer does with each completion of one operation: `result` is
 * bytes (or a descriptor) or `-errno`, `flags` the CQE flags, `offset` where
 * a received chunk starts in its buffer. Called once per completion; the
 * handler stays while `flags & F_MORE`.
 */
export type Handler = (result: number, flags: number, offset: number) => void

/** CQE flags (`IORING_CQE_F_*`), from the binding. */
export const F_BUFFER = native.CQE_F_BUFFER
export const F_MORE = native.CQE_F_MORE
export const F_NOTIF = native.CQE_F_NOTIF
export const F_BUF_MORE = native.CQE_F_BUF_MORE

/**
 * The promises and handlers of one ring's operations, by slot. It references
 * nothing native: the binding holds its settle function for as long as
 * operations can complete, and that must not keep the ring's JS objects alive.
 */
export class Completer {
  #resolves: (Resolve | undefined)[] = []
  #rejects: (Reject | undefined)[] = []
  #kinds: OpKind[] = []
  #handlers: (Handler | undefined)[] = []
  /** `(slot, result, flags, offset)` quads written by the binding before each `settle`. */
  cq: Int32Array = new Int32Array(0)

  track(slot: number, kind: OpKind): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.#resolves[slot] = resolve
      this.#rejects[slot] = reject
      this.#kinds[slot] = kind
    })
  }

  /**
   * The promise of a transfer the binding did in the call (no slot):
   * `result` is bytes or `-errno`.
   */
  now(result: number, kind: OpKind): Promise<number> {
    if (result >= 0) return Promise.resolve(result)
    return Promise.reject(errnoError(result, SYSCALL[kind]))
  }

  /** Routes every completion of the operation in `slot` to `handler`. */
  listen(slot: number, handler: Handler): void {
    this.#handlers[slot] = handler
  }

  /** Called by the binding with the number of quads in `cq`. */
  readonly settle = (n: number): void => {
    const cq = this.cq
    const resolves = this.#resolves
    const rejects = this.#rejects
    const handlers = this.#handlers
    let failure: unknown
    let failed = false
    for (let k = 0; k < n; k++) {
      const slot = cq[4 * k]
      const result = cq[4 * k + 1]
      const handler = handlers[slot]
      if (handler !== undefined) {
        const flags = cq[4 * k + 2]
        if ((flags & F_MORE) === 0) handlers[slot] = undefined
        try {
          handler(result, flags, cq[4 * k + 3])
        } catch (error) {
          // A user callback threw: deliver the rest, then rethrow the first.
          if (!failed) {
            failed = true
            failure = error
          }
        }
        continue
      }
      const resolve = resolves[slot]
      const reject = rejects[slot]
      resolves[slot] = undefined
      rejects[slot] = undefined
      if (resolve === undefined || reject === undefined) continue
      try {
        if (result >= 0) resolve(result)
        else reject(errnoError(result, SYSCALL[this.#kinds[slot]]))
      } catch (error) {
        // Building the error ran user code that threw (a setter on
        // Object.prototype): the operation still settles, with that error.
        reject(error instanceof Error ? error : new Error(String(error)))
      }
    }
    if (failed) throw failure
  }
}

/** What a pool needs from its ring; not part of the public API. */
export interface RingInternals {
  native: NativeRing
  completer: Completer
  counts: Float64Array
  /** Called once the ring is closed (receives waiting for a buffer end). */
  closers: Set<() => void>
}

let internalsOf: (ring: Ring) => RingInternals | undefined

/**
 * The internals of `ring` (for this package's classes only). Throws
 * `ERR_INVALID_ARG_TYPE` for anything that is not a ring made by
 * `new Ring()` (an `Object.create(Ring.prototype)` included).
 */
export function ringInternals(ring: Ring): RingInternals {
  const internals = internalsOf(ring)
  if (internals === undefined) throw invalidArgType('ring', 'an instance of Ring', ring)
  return internals
}

/**
 * A ring of operations on io_uring, or on epoll and a thread pool where
 * io_uring can't be used (see `RingOptions.backend` and `ring.backend`),
 * driven by the Node event loop of the thread that created it. The API is
 * the same on both.
 *
 * Completions are reaped when the ring's fd wakes the loop, and all of them
 * settle in one batch; everything queued during one JS turn reaches the
 * kernel in one `io_uring_enter`. The ring keeps the process alive only while
 * operations are in flight. Throws `ERR_ZCIO_URING_UNAVAILABLE` when io_uring
 * is asked for and is disabled, blocked by seccomp or missing (see `probe()`).
 */
export class Ring {
  readonly #internals: RingInternals

  static {
    internalsOf = (ring) => {
      if (typeof ring !== 'object' || ring === null || !(#internals in ring)) throw invalidArgType('ring', 'an instance of Ring', ring)
      return ring.#internals
    }
    guardMethods(Ring, 'Ring', (r) => #internals in (r as object), ['completions'])
  }

  /**
   * Sets up the ring (on io_uring: `SINGLE_ISSUER | DEFER_TASKRUN |
   * COOP_TASKRUN` where the kernel accepts them). Throws
   * `ERR_INVALID_ARG_TYPE` / `ERR_INVALID_ARG_VALUE` / `ERR_OUT_OF_RANGE` for
   * bad options, `ERR_ZCIO_URING_UNAVAILABLE` when io_uring is asked for and
   * can't be used, `ERR_ZCIO_UNSUPPORTED` for `sqpoll` on a ring that runs
   * on epoll.
   */
  constructor(options?: RingOptions) {
    let entries = 256
    let sqpollIdleMs = -1
    let busyPoll = 0
    let backend: BackendChoice = 'auto'
    let workers = 4
    if (options !== undefined) {
      validateObject(options, 'options')
      const b = options.backend
      if (b !== undefined) {
        if (typeof b !== 'string') throw invalidArgType('options.backend', 'of type string', b)
        if (!BACKENDS.includes(b)) {
          throw invalidArgValue('options.backend', b, "must be one of: 'auto', 'io_uring', 'epoll'")
        }
        backend = b as BackendChoice
      }
      if (options.workers !== undefined) {
        validateInteger(options.workers, 'options.workers', 1, 64)
        workers = options.workers
      }
      if (options.entries !== undefined) {
        validateInteger(options.entries, 'options.entries', 0, 2 ** 32 - 1)
        if (options.entries === 0 || options.entries > MAX_ENTRIES) {
          throw invalidArgValue('options.entries', options.entries, `must be between 1 and ${MAX_ENTRIES}`)
        }
        entries = options.entries
      }
      if (options.busyPoll !== undefined) {
        validateInteger(options.busyPoll, 'options.busyPoll', 0, 100_000)
        busyPoll = options.busyPoll
      }
      const sq = options.sqpoll
      if (sq === true) sqpollIdleMs = 1000
      else if (typeof sq === 'number') {
        validateInteger(sq, 'options.sqpoll', 0, 2 ** 32 - 1)
        sqpollIdleMs = sq
      } else if (sq !== undefined && sq !== false) {
        throw invalidArgType('options.sqpoll', 'of type boolean or number', sq)
      }
    }
    const completer = new Completer()
    const ring = new native.Ring(entries, sqpollIdleMs, backend, workers, completer.settle)
    completer.cq = ring.completionArray()
    this.#internals = { native: ring, completer, counts: ring.counts(), closers: new Set() }
    if (busyPoll > 0) {
      try {
        this.busyPoll = busyPoll
      } catch (e) {
        // Refused (epoll, or no TASKRUN flag): the ring is not handed out.
        ring.close()
        throw e
      }
    }
  }

  /**
   * Busy polling in microseconds (see `RingOptions.busyPoll`); can be changed
   * at any time. io_uring only: setting more than 0 on an epoll ring throws
   * `ERR_ZCIO_UNSUPPORTED` naming the backend.
   */
  get busyPoll(): number {
    return this.#internals.native.busyPoll
  }

  set busyPoll(us: number) {
    validateInteger(us, 'busyPoll', 0, 100_000)
    // On epoll the ring spins on the epoll instance (a poll(2) that does
    // not wait), which needs nothing of the kernel.
    if (us > 0 && this.backend === 'io_uring' && !this.features.taskrunFlag) {
      throw zcioError('ERR_ZCIO_UNSUPPORTED', 'busy polling needs IORING_SETUP_TASKRUN_FLAG (Linux 5.19)')
    }
    this.#internals.native.setBusyPoll(us)
  }

  /**
   * The backend the ring runs on: `'io_uring'`, or `'epoll'` (asked for,
   * forced by `ZCIO_BACKEND=epoll`, or chosen by `'auto'` where io_uring
   * can't be used: `probe().ioUringUnavailable` says why).
   */
  get backend(): BackendKind {
    return this.#internals.native.backend
  }

  /**
   * Lets the process exit while operations of this ring are in flight, as
   * `unref()` of a timer or a socket: the ring no longer keeps the event
   * loop alive (its operations still run and settle while something else
   * does). Returns the ring.
   */
  unref(): this {
    this.#internals.native.setRef(false)
    return this
  }

  /** Undoes `unref()`: operations in flight keep the event loop alive again (the default). Returns the ring. */
  ref(): this {
    this.#internals.native.setRef(true)
    return this
  }

  /** `false` after `unref()` (until `ref()`). */
  hasRef(): boolean {
    return this.#internals.native.hasRef
  }

  /** Operations queued or in flight whose completion has not been delivered. */
  get inFlightCount(): number {
    return this.#internals.counts[IN_FLIGHT]
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#internals.counts[CLOSED] === 1
  }

  /** The setup flags the kernel accepted. */
  get features(): RingFeatures {
    return this.#internals.native.features
  }

  /**
   * Hands queued operations to the kernel now (normally done before the event
   * loop blocks). Returns how many were submitted.
   */
  submit(): number {
    return this.#internals.native.submit()
  }

  /** Drains the completions of low-level submissions reaped so far. */
  takeCompletions(): Completion[] {
    return this.#internals.native.takeCompletions()
  }

  /**
   * Resolves with the completions of low-level submissions as soon as at
   * least one is available (at once, with `[]`, when no low-level operation
   * is in flight). Concurrent calls wait in order: each resolves with what
   * was reaped after the previous one resolved.
   */
  completions(): Promise<Completion[]> {
    try {
      return this.#internals.native.completions()
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * Refuses new operations, cancels those in flight (their promises reject
   * with `ECANCELED`, or resolve if they finished first), closes every pool of
   * the ring (their views get length 0) and frees the ring. Calling it again
   * does nothing.
   */
  close(): void {
    this.#internals.native.close()
    const closers = [...this.#internals.closers]
    this.#internals.closers.clear()
    for (const f of closers) f()
  }

  /** `close()`, for `using ring = new Ring()`. */
  [Symbol.dispose](): void {
    this.close()
  }

  [inspect.custom](depth: number, options: { stylize(text: string, style: string): string }): string {
    const state = {
      backend: this.backend,
      inFlightCount: this.inFlightCount,
      closed: this.closed,
      features: this.closed ? undefined : this.features,
    }
    return `Ring ${inspect(state, { ...options, depth: depth < 0 ? 0 : depth })}`
  }
}
