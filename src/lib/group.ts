// BufferGroup: a provided-buffer ring. The kernel picks a buffer when data
// arrives; chunks are views into the group's memory (no copy) that go back
// to the kernel when released. This layer turns receives into promises,
// async iterables and callbacks, and re-arms multishot receives the kernel
// ended for want of buffers as soon as a release brings one back.

import { inspect } from 'node:util'
import { native, type NativeGroup } from './binding.js'
import { errnoError, invalidArgType, invalidArgValue } from './errors.js'
import { F_BUFFER, type Completer, Ring, ringInternals } from './ring.js'
import { validateInteger, validateObject } from './validate.js'
import { streamNative, type TcpStream } from './stream.js'
import { type ReceiveGroup, brandGroup, type groupMark } from './group-brand.js'
import { ChunkBook } from './group-chunks.js'
import { type Chunk, chunkIterator, makeChunk, recvPending } from './group-iter.js'
import { type GroupCore, Scheduler, receive } from './group-recv.js'

export type { Chunk } from './group-iter.js'

/** Options of `new BufferGroup()`. */
export interface BufferGroupOptions {
  /** The group id (0 to 65535), unique on the ring. */
  groupId: number
  /** Bytes per buffer (1 to 1 GiB). */
  bufferSize: number
  /** Buffers: a power of two up to 32768. */
  bufferCount: number
  /**
   * Incremental consumption (Linux 6.12, `probe().bufRingIncremental`): the
   * kernel fills one buffer across several receives. Default `false`.
   */
  incremental?: boolean
}

/** A snapshot of a group's counts. */
export interface BufferGroupStats {
  bufferCount: number
  /** Buffers in the kernel's ring (it may fill them). */
  availableCount: number
  /** Buffers handed back by the kernel whose chunks are not all released. */
  heldCount: number
  /** Chunks received and not released. */
  chunkCount: number
  /** Receives that found no buffer (`ENOBUFS`). */
  enobufsCount: number
  /** Multishot receives re-armed after the kernel ended them. */
  rearmCount: number
  /** Chunks collected without `release()` and given back by the group. */
  leakedCount: number
}

/** Callbacks of the fast receive form (`recvCallback`). */
export interface ChunkCallbacks {
  /**
   * One chunk: its bytes are `group.buffer` from `bufferId * bufferSize +
   * offset`, `length` long. Give it back with `group.put(bufferId)`.
   */
  onChunk(bufferId: number, offset: number, length: number): void
  /** The receive ended: `error` is undefined at end of stream. */
  onEnd?(error?: Error): void
}

/** Options of `recvCallback` and `recvMultishot`. */
export interface RecvOptions {
  /**
   * Chunks this receive may hold (delivered, not yet released) before it
   * pauses: its data then waits in the socket (TCP flow control slows the
   * peer down) and the receive resumes once one of them is released, so
   * one consumer that stops reading cannot starve the other streams of a
   * shared group. Default: half of the group's buffers, at least 1 and at
   * most 64 (a receive more than 32 chunks below its limit stays one
   * multishot operation; closer to it, one operation per chunk keeps the
   * limit exact). A consumer that keeps several chunks before it releases
   * any (a message spanning chunks) needs a limit above that number.
   */
  maxHeldChunks?: number
}

/** Per stream: one continuous receive, or one-shot receives in call order. */
interface StreamRecvs {
  continuous: boolean
  busy: boolean
  queue: (() => void)[]
}

const recvsOf = new WeakMap<TcpStream, StreamRecvs>()

function recvsFor(stream: TcpStream): StreamRecvs {
  let r = recvsOf.get(stream)
  if (!r) recvsOf.set(stream, (r = { continuous: false, busy: false, queue: [] }))
  return r
}


// Indices of the published counts, from the binding (the core's `group_counts`).
const C = {
  buffers: native.GROUP_COUNT_BUFFERS,
  available: native.GROUP_COUNT_AVAILABLE,
  held: native.GROUP_COUNT_HELD,
  chunks: native.GROUP_COUNT_CHUNKS,
  enobufs: native.GROUP_COUNT_ENOBUFS,
  rearms: native.GROUP_COUNT_REARMS,
  receives: native.GROUP_COUNT_RECEIVES,
  closed: native.GROUP_COUNT_CLOSED,
} as const
const MAX_BUFFER_SIZE = native.GROUP_MAX_BUFFER_SIZE
const MAX_BUFFERS = native.GROUP_MAX_BUFFERS

/**
 * A group of receive buffers the kernel chooses from (a provided-buffer
 * ring, Linux 5.19). Receive with `recv`, `recvMultishot` or `recvCallback`.
 */
export class BufferGroup implements ReceiveGroup {
  /** Marks the type as a group for modules that can't import it (see `ReceiveGroup`). */
  declare readonly [groupMark]: true

  readonly #native: NativeGroup
  readonly #completer: Completer
  readonly #counts: Float64Array
  readonly #region: Uint8Array
  readonly #size: number
  readonly #ring: Ring
  readonly #book: ChunkBook
  readonly #core: GroupCore

  constructor(ring: Ring, options: BufferGroupOptions) {
    if (!(ring instanceof Ring)) throw invalidArgType('ring', 'an instance of Ring', ring)
    validateObject(options, 'options')
    validateInteger(options.groupId, 'options.groupId', 0, 65535)
    validateInteger(options.bufferSize, 'options.bufferSize', 0, 2 ** 32 - 1)
    validateInteger(options.bufferCount, 'options.bufferCount', 0, 2 ** 32 - 1)
    const { bufferSize, bufferCount } = options
    if (bufferSize === 0 || bufferSize > MAX_BUFFER_SIZE) {
      throw invalidArgValue('options.bufferSize', bufferSize, 'must be between 1 and 1073741824 (1 GiB)')
    }
    if (bufferCount === 0 || bufferCount > MAX_BUFFERS || (bufferCount & (bufferCount - 1)) !== 0) {
      throw invalidArgValue('options.bufferCount', bufferCount, 'must be a power of two between 1 and 32768')
    }
    const inc = options.incremental ?? false
    if (typeof inc !== 'boolean') throw invalidArgType('options.incremental', 'of type boolean', inc)
    const internals = ringInternals(ring)
    this.#native = new native.BufferGroup(internals.native, options.groupId, bufferSize, bufferCount, inc)
    this.#completer = internals.completer
    this.#counts = this.#native.counts()
    this.#region = this.#native.region()
    this.#size = bufferSize
    this.#ring = ring
    const counts = this.#counts
    const available = (): number => counts[C.available]
    const sched = new Scheduler(available)
    this.#book = new ChunkBook(this.#native, () => sched.pump())
    this.#core = {
      native: this.#native,
      completer: this.#completer,
      ring,
      book: this.#book,
      sched,
      closers: new Set(),
      available,
      closed: () => this.closed,
    }
    const region = this.#region
    brandGroup(this, {
      native: (stream) => streamNative(stream as TcpStream),
      receive: (stream, callbacks) =>
        this.#receive(
          stream as TcpStream,
          // Not counted: the buffer goes back as this returns.
          (id, offset, length) => {
            const start = id * bufferSize + offset
            callbacks.onData(region.subarray(start, start + length))
          },
          callbacks.onEnd,
          false,
          1,
        ),
    })
  }

  /** The group's whole memory: buffer `b` starts at `b * bufferSize`. */
  get buffer(): Uint8Array {
    return this.#region
  }

  get bufferSize(): number {
    return this.#size
  }

  get bufferCount(): number {
    return this.#counts[C.buffers]
  }

  get availableCount(): number {
    return this.#counts[C.available]
  }

  get heldCount(): number {
    return this.#counts[C.held]
  }

  get enobufsCount(): number {
    return this.#counts[C.enobufs]
  }

  get rearmCount(): number {
    return this.#counts[C.rearms]
  }

  get closed(): boolean {
    return this.#counts[C.closed] === 1 || this.#ring.closed
  }

  stats(): BufferGroupStats {
    const c = this.#counts
    return {
      bufferCount: c[C.buffers],
      availableCount: c[C.available],
      heldCount: c[C.held],
      chunkCount: c[C.chunks],
      enobufsCount: c[C.enobufs],
      rearmCount: c[C.rearms],
      leakedCount: this.#book.leaked,
    }
  }

  /**
   * Gives one chunk of buffer `bufferId` back (the same as `chunk.release()`;
   * with a number, the oldest chunk of that buffer not yet released).
   */
  put(chunk: Chunk | number): void {
    if (typeof chunk === 'number') {
      validateInteger(chunk, 'bufferId', 0, 2 ** 32 - 1)
      this.#book.put(chunk)
    } else if (typeof chunk === 'object' && chunk !== null && typeof chunk.release === 'function') {
      chunk.release()
    } else {
      throw invalidArgType('chunk', 'a Chunk or a buffer id', chunk)
    }
  }

  /** Chunks collected without `release()` and given back (see `stats().leakedCount`). */
  get leakedCount(): number {
    return this.#book.leaked
  }

  /**
   * One receive: resolves with a chunk, or `null` at end of stream; rejects
   * with `ENOBUFS` when every buffer is held, or the socket's error. Several
   * `recv()` of one stream run one after the other, in call order (each gets
   * the bytes after the previous one's); while the stream has a continuous
   * receive (`recvMultishot`, `recvCallback`) it rejects with
   * `ERR_ZCIO_RECV_PENDING`. A chunk collected without `release()` is given
   * back (counted in `leakedCount`, with a warning): keep the chunk, or its
   * `data`, while you read it.
   */
  recv(stream: TcpStream): Promise<Chunk | null> {
    try {
      const s = streamNative(stream)
      const order = recvsFor(stream)
      if (order.continuous) return Promise.reject(recvPending('a continuous receive'))
      return new Promise<Chunk | null>((resolve, reject) => {
        const next = (): void => {
          const go = order.queue.shift()
          if (go) go()
          else order.busy = false
        }
        const go = (): void => {
          let slot: number
          try {
            slot = this.#native.recv(s)
          } catch (e) {
            reject(e)
            return next()
          }
          this.#completer.listen(slot, (result, flags, offset) => {
            if (result < 0) reject(errnoError(result, 'recv'))
            else if ((flags & F_BUFFER) === 0) resolve(null)
            else {
              const id = flags >>> 16
              resolve(makeChunk(this.#book, this.#region, this.#size, this.#book.add(id, 0), offset, result))
            }
            next()
          })
        }
        if (order.busy) order.queue.push(go)
        else {
          order.busy = true
          go()
        }
      })
    } catch (e) {
      return Promise.reject(e)
    }
  }

  #receive(
    stream: TcpStream,
    deliver: Parameters<typeof receive>[3],
    onEnd: (error?: Error) => void,
    counted: boolean,
    limit: number,
  ): ReturnType<typeof receive> {
    const s = streamNative(stream)
    const order = recvsFor(stream)
    if (order.continuous) throw recvPending('a continuous receive')
    if (order.busy) throw recvPending('a one-shot receive pending')
    order.continuous = true
    return receive(this.#core, stream, s, deliver, (error) => {
      order.continuous = false
      onEnd(error)
    }, { limit, counted })
  }

  #limit(options: RecvOptions | undefined): number {
    if (options === undefined) return Math.max(1, Math.min(64, this.bufferCount >>> 1))
    validateObject(options, 'options')
    const max = options.maxHeldChunks
    if (max === undefined) return Math.max(1, Math.min(64, this.bufferCount >>> 1))
    validateInteger(max, 'options.maxHeldChunks', 1, 2 ** 32 - 1)
    return max
  }

  /**
   * Receives continuously (multishot, Linux 6.0) and calls `onChunk` for each
   * chunk, without an object per chunk. When the kernel ends the receive
   * because every buffer is held, it is re-armed as soon as a release brings
   * one back (receives waiting are served in order): nothing is lost, order
   * is kept. Holding `options.maxHeldChunks` chunks pauses it (see
   * `RecvOptions`). Returns `stop()`, which cancels the receive (`onEnd`
   * follows). Throws `ERR_ZCIO_RECV_PENDING` when the stream already has a
   * receive. Chunks not given back (`put`) are not reclaimed: there is no
   * object to collect.
   */
  recvCallback(stream: TcpStream, callbacks: ChunkCallbacks, options?: RecvOptions): { stop(): void } {
    validateObject(callbacks, 'callbacks')
    const { onChunk, onEnd } = callbacks
    if (typeof onChunk !== 'function') throw invalidArgType('callbacks.onChunk', 'of type function', onChunk)
    if (onEnd !== undefined && typeof onEnd !== 'function') throw invalidArgType('callbacks.onEnd', 'of type function', onEnd)
    const limit = this.#limit(options)
    const h = this.#receive(stream, (id, offset, length) => onChunk.call(callbacks, id, offset, length), (e) => onEnd?.call(callbacks, e), true, limit)
    return { stop: () => h.stop() }
  }

  /**
   * Receives continuously as an async iterable of chunks (multishot); ends at
   * end of stream, throws the socket's error. Breaking out of the loop stops
   * the receive and releases chunks not yet taken. Chunks queued and taken
   * but not released count towards `options.maxHeldChunks` (see
   * `RecvOptions`); one collected without `release()` is given back.
   */
  recvMultishot(stream: TcpStream, options?: RecvOptions): AsyncIterableIterator<Chunk> {
    const limit = this.#limit(options)
    const book = this.#book
    const region = this.#region
    const size = this.#size
    return chunkIterator((onChunk, onEnd) =>
      // Counted: every chunk comes with its record.
      this.#receive(stream, (_id, offset, length, record) => onChunk(makeChunk(book, region, size, record!, offset, length)), onEnd, true, limit),
    )
  }

  /**
   * No new receives; the kernel's registration goes once no receive can land
   * in the group. Chunks held stay valid until released or collected.
   */
  close(): void {
    this.#native.close()
    // Receives waiting for a buffer, or paused, end now (ERR_ZCIO_CLOSED)
    // instead of waiting forever.
    const closers = [...this.#core.closers]
    this.#core.closers.clear()
    for (const f of closers) f()
  }

  [Symbol.dispose](): void {
    this.close()
  }

  [inspect.custom](depth: number, options: object): string {
    return `BufferGroup ${inspect(this.stats(), { ...options, depth: depth < 0 ? 0 : depth })}`
  }
}
