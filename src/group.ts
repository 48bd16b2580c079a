// BufferGroup: a provided-buffer ring. The kernel picks a buffer when data
// arrives; chunks are views into the group's memory (no copy) that go back
// to the kernel when released. This layer turns receives into promises,
// async iterables and callbacks, and re-arms multishot receives the kernel
// ended for want of buffers as soon as a release brings one back.

import { inspect } from 'node:util'
import { native, type NativeGroup } from './binding.js'
import { errnoError, invalidArgType, invalidArgValue, zcioError } from './errors.js'
import { F_BUFFER, F_MORE, type Completer, Ring, ringInternals } from './ring.js'
import { validateInteger, validateObject } from './validate.js'
import { onStreamClose, streamNative, type TcpStream } from './stream.js'

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

/** Received bytes: a view into the group's memory, owned until released. */
export interface Chunk {
  /** The buffer the kernel chose. */
  readonly bufferId: number
  /**
   * The bytes, in place (no copy). After `release()` the same memory takes
   * later data: copy what must outlive the release.
   */
  readonly data: Uint8Array
  /** Gives the chunk back; a second call throws `ERR_ZCIO_NOT_ACQUIRED`. */
  release(): void
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

// Indices of the published counts (crates/zcio/src/buf_ring.rs, group_counts).
const C = { buffers: 0, available: 1, held: 2, chunks: 3, enobufs: 4, rearms: 5, receives: 6, closed: 7 }
const ENOBUFS = -105

/**
 * A group of receive buffers the kernel chooses from (a provided-buffer
 * ring, Linux 5.19). Receive with `recv`, `recvMultishot` or `recvCallback`.
 */
export class BufferGroup {
  readonly #native: NativeGroup
  readonly #completer: Completer
  readonly #counts: Float64Array
  readonly #region: Uint8Array
  readonly #size: number
  readonly #ring: Ring
  /** Multishot receives waiting for a buffer to come back. */
  #waiting: (() => void)[] = []

  constructor(ring: Ring, options: BufferGroupOptions) {
    if (!(ring instanceof Ring)) throw invalidArgType('ring', 'an instance of Ring', ring)
    validateObject(options, 'options')
    validateInteger(options.groupId, 'options.groupId', 0, 65535)
    validateInteger(options.bufferSize, 'options.bufferSize', 0, 2 ** 32 - 1)
    validateInteger(options.bufferCount, 'options.bufferCount', 0, 2 ** 32 - 1)
    const { bufferSize, bufferCount } = options
    if (bufferSize === 0 || bufferSize > 2 ** 30) {
      throw invalidArgValue('options.bufferSize', bufferSize, 'must be between 1 and 1073741824 (1 GiB)')
    }
    if (bufferCount === 0 || bufferCount > 32768 || (bufferCount & (bufferCount - 1)) !== 0) {
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
    }
  }

  /** Gives one chunk of buffer `bufferId` back (the same as `chunk.release()`). */
  put(chunk: Chunk | number): void {
    if (typeof chunk === 'number') {
      validateInteger(chunk, 'bufferId', 0, 2 ** 32 - 1)
      this.#release(chunk)
    } else if (typeof chunk === 'object' && chunk !== null && typeof chunk.release === 'function') {
      chunk.release()
    } else {
      throw invalidArgType('chunk', 'a Chunk or a buffer id', chunk)
    }
  }

  /** Armed multishot receives of this group: each kicks itself (see `#release`). */
  readonly #armed = new Set<() => void>()

  #release(bufferId: number): void {
    const wasEmpty = this.availableCount === 0
    this.#native.release(bufferId)
    // The kernel's ring was empty: a multishot receive that found no buffer
    // may wait for a socket event that already came (data and end of stream
    // queued before it ran dry: it never ends). Such receives are cancelled
    // and re-armed now that a buffer is back; nothing is lost, order is kept.
    if (wasEmpty && this.#armed.size > 0) for (const kick of [...this.#armed]) kick()
    if (this.#waiting.length > 0 && this.availableCount > 0) {
      const waiting = this.#waiting
      this.#waiting = []
      for (const rearm of waiting) rearm()
    }
  }

  #chunk(bufferId: number, offset: number, length: number): Chunk {
    const start = bufferId * this.#size + offset
    let released = false
    return {
      bufferId,
      data: this.#region.subarray(start, start + length),
      release: () => {
        if (released) throw zcioError('ERR_ZCIO_NOT_ACQUIRED', `this chunk of buffer ${bufferId} was already released`)
        released = true
        this.#release(bufferId)
      },
    }
  }

  /**
   * One receive: resolves with a chunk, or `null` at end of stream; rejects
   * with `ENOBUFS` when every buffer is held, or the socket's error.
   */
  recv(stream: TcpStream): Promise<Chunk | null> {
    try {
      const slot = this.#native.recv(streamNative(stream))
      return new Promise<Chunk | null>((resolve, reject) => {
        this.#completer.listen(slot, (result, flags, offset) => {
          if (result < 0) reject(errnoError(result, 'recv'))
          else if ((flags & F_BUFFER) === 0) resolve(null)
          else resolve(this.#chunk(flags >>> 16, offset, result))
        })
      })
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * Receives continuously (multishot, Linux 6.0) and calls `onChunk` for each
   * chunk, without an object per chunk. When the kernel ends the receive
   * because every buffer is held, it is re-armed as soon as one is released
   * (`put`): nothing is lost, order is kept. Returns `stop()`, which cancels
   * the receive (`onEnd` follows).
   */
  recvCallback(stream: TcpStream, callbacks: ChunkCallbacks): { stop(): void } {
    validateObject(callbacks, 'callbacks')
    if (typeof callbacks.onChunk !== 'function') throw invalidArgType('callbacks.onChunk', 'of type function', callbacks.onChunk)
    const s = streamNative(stream)
    const ring = ringInternals(this.#ring).native
    // On Unix stream sockets a multishot receive that drained the data
    // queued with the end of stream does not see the end: the socket signals
    // nothing new (seen on Linux 6.18). There, one receive at a time,
    // re-armed after each completion, so the end of stream always comes.
    let oneShot: boolean
    try {
      oneShot = stream.localAddress.family === 'unix'
    } catch {
      oneShot = false // closed: arming below reports it
    }
    let slot = -1
    let waiter: (() => void) | undefined
    let stopped = false
    let ended = false
    /** Cancelled by `kick`, to be re-armed when its final completion comes. */
    let kicked = false
    const kick = (): void => {
      this.#armed.delete(kick)
      if (slot < 0 || kicked || stopped) return
      kicked = true
      try {
        ring.cancelSlot(slot)
      } catch {
        kicked = false // the ring is closed: the receive ends with it
      }
    }
    const end = (error?: Error): void => {
      if (ended) return
      ended = true
      this.#armed.delete(kick)
      callbacks.onEnd?.(error)
    }
    const arm = (rearm: boolean): void => {
      if (stopped) return end()
      try {
        slot = oneShot ? this.#native.recv(s) : this.#native.recvMultishot(s, rearm)
      } catch (e) {
        // ERR_ZCIO_CLOSED when the group was closed while the receive
        // waited for a buffer.
        return end(e as Error)
      }
      this.#completer.listen(slot, handler)
      this.#armed.add(kick)
    }
    // Waiting for a buffer to come back: a release re-arms; the stream's or
    // the ring's close ends the receive instead.
    let unhook: (() => void) | undefined
    const unpark = (): void => {
      this.#waiting = this.#waiting.filter((w) => w !== waiter)
      waiter = undefined
      unhook?.()
      unhook = undefined
    }
    const park = (): void => {
      waiter = () => {
        unpark()
        arm(true)
      }
      this.#waiting.push(waiter)
      const offStream = onStreamClose(stream, () => {
        unpark()
        end(zcioError('ERR_ZCIO_CLOSED', 'the stream was closed'))
      })
      const closers = ringInternals(this.#ring).closers
      const onRing = (): void => {
        unpark()
        end(zcioError('ERR_ZCIO_CLOSED', 'the ring was closed'))
      }
      closers.add(onRing)
      unhook = () => {
        offStream()
        closers.delete(onRing)
      }
    }
    const handler = (result: number, flags: number, offset: number): void => {
      if (result > 0 && (flags & F_BUFFER) !== 0) callbacks.onChunk(flags >>> 16, offset, result)
      else if ((flags & F_BUFFER) !== 0) this.#release(flags >>> 16) // an empty chunk
      if ((flags & F_MORE) !== 0) return
      slot = -1
      this.#armed.delete(kick)
      if (kicked) {
        kicked = false
        if (result === -125 && !stopped) return arm(true)
      }
      if (result === 0) end()
      else if (result > 0 || result === ENOBUFS) {
        // The kernel ended it (no buffer left, or its own reasons): go on
        // once a buffer is back.
        if (this.availableCount > 0) arm(true)
        else if (!stopped) park()
        else end()
      } else if (result === -125 && stopped) end()
      else end(errnoError(result, 'recv'))
    }
    arm(false)
    return {
      stop: () => {
        if (stopped) return
        stopped = true
        if (slot >= 0) ring.cancelSlot(slot)
        else {
          unpark()
          end()
        }
      },
    }
  }

  /**
   * Receives continuously as an async iterable of chunks (multishot); ends at
   * end of stream, throws the socket's error. Breaking out of the loop stops
   * the receive and releases chunks not yet taken.
   */
  recvMultishot(stream: TcpStream): AsyncIterableIterator<Chunk> {
    const queue: Chunk[] = []
    const takers: { resolve: (r: IteratorResult<Chunk>) => void; reject: (e: Error) => void }[] = []
    let done = false
    let failure: Error | undefined
    const flush = (): void => {
      while (takers.length > 0 && queue.length > 0) takers.shift()!.resolve({ value: queue.shift()!, done: false })
      if (done && queue.length === 0) {
        for (const t of takers.splice(0)) {
          if (failure) t.reject(failure)
          else t.resolve({ value: undefined, done: true })
        }
      }
    }
    const handle = this.recvCallback(stream, {
      onChunk: (id, offset, length) => {
        queue.push(this.#chunk(id, offset, length))
        flush()
      },
      onEnd: (error) => {
        done = true
        failure = error
        flush()
      },
    })
    const iterator: AsyncIterableIterator<Chunk> = {
      next: () => {
        if (queue.length > 0) return Promise.resolve({ value: queue.shift()!, done: false })
        if (done) {
          if (failure) {
            const f = failure
            failure = undefined
            return Promise.reject(f)
          }
          return Promise.resolve({ value: undefined, done: true })
        }
        return new Promise((resolve, reject) => takers.push({ resolve, reject }))
      },
      return: () => {
        handle.stop()
        for (const c of queue.splice(0)) c.release()
        return Promise.resolve({ value: undefined, done: true })
      },
      [Symbol.asyncIterator]() {
        return iterator
      },
    }
    return iterator
  }

  /**
   * No new receives; the kernel's registration goes once no receive can land
   * in the group. Chunks held stay valid until released or collected.
   */
  close(): void {
    this.#native.close()
    // Receives waiting for a buffer end now (their re-arm fails with
    // ERR_ZCIO_CLOSED) instead of waiting forever.
    const waiting = this.#waiting
    this.#waiting = []
    for (const rearm of waiting) rearm()
  }

  [Symbol.dispose](): void {
    this.close()
  }

  [inspect.custom](depth: number, options: object): string {
    return `BufferGroup ${inspect(this.stats(), { ...options, depth: depth < 0 ? 0 : depth })}`
  }
}
