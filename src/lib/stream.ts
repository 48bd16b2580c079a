// TcpStream: a connected stream socket (TCP over IPv4/IPv6, Unix) driven by
// the ring. Sends of one stream are kept in order: while sends are in
// flight, new ones wait here and go to the kernel as one chain of linked
// operations when the previous chain has been sent. A zero-copy send settles
// only when its notification says the memory is free again.

import { native, type NativeStream } from './binding.js'
import { errnoError, invalidArgType, invalidArgValue, zcioError } from './errors.js'
import { Ring, ringInternals } from './ring.js'
import { validateFd, validateInteger, validateObject } from './validate.js'
import { type AddressOptions, type CheckedAddress, type InetAddress, type InetAddressOptions, type SocketAddress, type UnixAddress, type UnixAddressOptions, checkAddress, isResolved, resolveHost } from './address.js'
import { type PoolSlice, type SendData, type SendZcResult, byteLength, checkData, lend, unlend } from './send-data.js'
import { type Item, SendQueue, item } from './send-queue.js'
import { guardMethods } from './brand.js'
import { type NodeStream, type NodeStreamOptions, toNodeStream } from './node-stream.js'
import { type ConnectOptions, checkConnectOptions, connectNative } from './stream-connect.js'
import type { ReceiveGroup } from './group-brand.js'

const ECANCELED = -125
const EPIPE = 32
/** Default `writableHighWaterMark`. */
const HIGH_WATER_MARK = 64 * 1024
/** Default bound of `close()` in milliseconds. */
const CLOSE_TIMEOUT = 1000

let nativeOfStream: (s: TcpStream) => NativeStream
/** `probe().sendZc`, read once. */
let zcSupport: boolean | undefined

let closersOf: (s: TcpStream) => Set<() => void>

/** Runs `f` once `stream` is closed (for this package's classes only); returns the undo. */
export function onStreamClose(stream: TcpStream, f: () => void): () => void {
  const set = closersOf(stream)
  set.add(f)
  return () => set.delete(f)
}

/** The binding object of `stream` (for this package's classes only). */
export function streamNative(stream: TcpStream): NativeStream {
  if (!(stream instanceof TcpStream)) throw invalidArgType('stream', 'an instance of TcpStream', stream)
  return nativeOfStream(stream)
}

/** Options of a stream (`connect`, `fromFd`). */
export interface StreamOptions {
  /**
   * Bytes of unfinished sends above which `write()` returns `false`
   * (default 64 KiB); see `writableLength` and `drained()`.
   */
  highWaterMark?: number
}

/** Options of `close()`. */
export interface CloseOptions {
  /**
   * Milliseconds to wait for zero-copy sends the kernel still holds (a peer
   * that does not read) before the connection is aborted (default 1000).
   */
  timeout?: number
}

function checkHighWaterMark(options: StreamOptions | undefined): number {
  if (options === undefined) return HIGH_WATER_MARK
  validateObject(options, 'options')
  const hwm = options.highWaterMark ?? HIGH_WATER_MARK
  validateInteger(hwm, 'options.highWaterMark', 0, 2 ** 53 - 1)
  return hwm
}

/**
 * A connected stream socket whose sends and receives go through the ring.
 * `A` is the kind of its addresses: `InetAddress` for TCP, `UnixAddress` for
 * a Unix socket (both for one adopted with `fromFd`).
 */
export class TcpStream<A extends SocketAddress = SocketAddress> {
  readonly #native: NativeStream
  readonly #ring: Ring
  readonly #sends: SendQueue
  #hwm = HIGH_WATER_MARK
  #idle: (() => void)[] = []
  #drainers: (() => void)[] = []
  #closed = false
  #abortTimer: NodeJS.Timeout | undefined
  #shutRead = false
  /** Set by `shutdown()`: sends from then on fail with `EPIPE`. */
  #shutWrite = false
  /** A write shutdown waiting for earlier sends to end. */
  #shutPending = false
  /** `write` calls so far, and how many of them have ended. */
  #writes = 0
  #writesDone = 0
  #writeError: Error | undefined
  #flushers: { upTo: number; resolve: () => void; reject: (e: Error) => void }[] = []
  /** Called once the stream is closed (receives waiting for a buffer end). */
  readonly #closers = new Set<() => void>()
  readonly #writeDone = (bytes: number | Error): void => {
    this.#writesDone++
    if (bytes instanceof Error) this.#writeError ??= bytes
    if (this.#flushers.length > 0) this.#wakeFlushers()
  }

  static {
    nativeOfStream = (s) => {
      if (typeof s !== 'object' || s === null || !(#native in s)) throw invalidArgType('stream', 'an instance of TcpStream', s)
      return s.#native
    }
    closersOf = (s) => s.#closers
    guardMethods(TcpStream, 'TcpStream', (s) => #native in (s as object), ['send', 'sendZc', 'flush', 'drained', 'close', 'destroy'])
  }

  /** @internal Use `connect`, `fromFd` or a listener. */
  constructor(ring: Ring, handle: NativeStream, options?: StreamOptions) {
    if (!(handle instanceof native.TcpStream)) throw zcioError('ERR_ILLEGAL_CONSTRUCTOR', 'Illegal constructor')
    this.#native = handle
    this.#ring = ring
    this.#hwm = checkHighWaterMark(options)
    this.#sends = new SendQueue(handle, ring, ringInternals(ring).completer, {
      onSent: () => {
        if (this.#shutPending) this.#shutdownNow()
      },
      onIdle: () => {
        clearTimeout(this.#abortTimer)
        for (const f of this.#idle.splice(0)) f()
      },
      onBytes: () => {
        if (this.#drainers.length > 0 && this.#sends.bytes < this.#hwm) for (const f of this.#drainers.splice(0)) f()
      },
    })
  }

  /**
   * Connects to `host:port` (a host name is resolved first, as
   * `net.connect` does) or to a Unix `path`; rejects with `ECONNREFUSED`,
   * `ENOTFOUND`... Bad options reject with `ERR_INVALID_ARG_TYPE` /
   * `ERR_OUT_OF_RANGE` / `ERR_INVALID_ARG_VALUE`.
   */
  static connect(ring: Ring, options: UnixAddressOptions & StreamOptions & ConnectOptions): Promise<TcpStream<UnixAddress>>
  static connect(ring: Ring, options: InetAddressOptions & StreamOptions & ConnectOptions): Promise<TcpStream<InetAddress>>
  static connect(ring: Ring, options: AddressOptions & StreamOptions & ConnectOptions): Promise<TcpStream>
  static connect(ring: Ring, options: AddressOptions & StreamOptions & ConnectOptions): Promise<TcpStream> {
    try {
      if (!(ring instanceof Ring)) throw invalidArgType('ring', 'an instance of Ring', ring)
      const a = checkAddress(options, 'options', true)
      checkHighWaterMark(options)
      const c = checkConnectOptions(options)
      const made = (h: NativeStream): TcpStream => new TcpStream(ring, h, options)
      // A numeric address connects at once; a name after its lookup.
      if (isResolved(a)) return connectNative(ring, a, c).then(made)
      return resolveHost(a).then((r) => connectNative(ring, r, c).then(made))
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * Adopts a connected stream socket: the stream owns it from now on and
   * closes it. A descriptor another zcio stream or listener owns is refused
   * (`ERR_ZCIO_FD_IN_USE`); to keep using `fd` elsewhere, adopt a `dup` of
   * it. On any error the caller keeps `fd`.
   */
  static fromFd(ring: Ring, fd: number, options?: StreamOptions): TcpStream {
    if (!(ring instanceof Ring)) throw invalidArgType('ring', 'an instance of Ring', ring)
    validateFd(fd)
    checkHighWaterMark(options)
    return new TcpStream(ring, native.TcpStream.fromFd(ringInternals(ring).native, fd), options)
  }

  get localAddress(): A {
    return this.#native.localAddress as A
  }

  get remoteAddress(): A {
    return this.#native.remoteAddress as A
  }

  /** The descriptor (owned by the stream). */
  get fd(): number {
    return this.#native.fd
  }

  get closed(): boolean {
    return this.#closed
  }

  /** Bytes of sends (`write`, `send`, `sendZc`) queued or in flight that have not finished. */
  get writableLength(): number {
    return this.#sends.bytes
  }

  /** Above this many unfinished bytes `write()` returns `false`. */
  get writableHighWaterMark(): number {
    return this.#hwm
  }

  set writableHighWaterMark(value: number) {
    validateInteger(value, 'writableHighWaterMark', 0, 2 ** 53 - 1)
    this.#hwm = value
    if (this.#sends.bytes < value) for (const f of this.#drainers.splice(0)) f()
  }

  /**
   * Turns TCP keep-alive probes on or off (`SO_KEEPALIVE`); `initialDelay`
   * (ms, rounded down to seconds) sets the idle time before the first probe
   * when above 0. A no-op on Unix sockets.
   */
  setKeepAlive(enable = false, initialDelay = 0): this {
    if (typeof enable !== 'boolean') throw invalidArgType('enable', 'of type boolean', enable)
    validateInteger(initialDelay, 'initialDelay', 0, 2 ** 53 - 1)
    this.#native.setKeepAlive(enable, Math.min(Math.floor(initialDelay / 1000), 2 ** 31 - 1))
    return this
  }

  /** Turns Nagle's algorithm off (default) or on. */
  setNoDelay(noDelay = true): this {
    if (typeof noDelay !== 'boolean') throw invalidArgType('noDelay', 'of type boolean', noDelay)
    this.#native.setNoDelay(noDelay)
    return this
  }

  /**
   * Shuts sending (default), receiving or both down: the peer sees end of
   * stream after every byte of the sends made before this call, as Node's
   * `end()`. While earlier sends are still queued or in the kernel, the
   * write side is shut once they have ended; sends made after this call fail
   * with `EPIPE`, and an error of the deferred shutdown is reported by
   * `flush()`. Shutting a side down again is a no-op.
   */
  shutdown(how: 'read' | 'write' | 'both' = 'write'): void {
    const code = ({ read: 0, write: 1, both: 2 } as const)[how]
    if (code === undefined) throw invalidArgValue('how', how, "must be 'read', 'write' or 'both'")
    if (this.#closed || this.#ring.closed) throw zcioError('ERR_ZCIO_CLOSED', 'the stream is closed')
    const read = code !== 1 && !this.#shutRead
    const write = code !== 0 && !this.#shutWrite
    if (read) {
      try {
        this.#native.shutdown(0)
      } catch (e) {
        // Once both sides have sent their FIN the socket is no longer
        // connected: there is nothing left to shut.
        if (!(this.#shutWrite && (e as { code?: string }).code === 'ENOTCONN')) throw e
      }
      this.#shutRead = true
    }
    if (!write) return
    if (this.#sends.sent) this.#native.shutdown(1)
    else this.#shutPending = true
    this.#shutWrite = true
  }

  /** Shuts the write side down once the sends made before `shutdown()` have ended. */
  #shutdownNow(): void {
    this.#shutPending = false
    if (this.#closed) return
    try {
      this.#native.shutdown(1)
    } catch (e) {
      this.#writeError ??= e as Error
      if (this.#flushers.length > 0) this.#wakeFlushers()
    }
  }

  /**
   * Sends all of `data`, after every earlier send of this stream; resolves
   * with the byte count once all of it went. A `Uint8Array` that is not
   * memory of a pool or a group (or a `SharedArrayBuffer`) is copied when
   * its turn comes, so it may change or be transferred after that. Rejects
   * with the kernel's error (`ECONNRESET`, `EPIPE`...; `bytesWritten` says
   * how many bytes went before it) if not all of it could go.
   */
  send(data: SendData): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.#enqueue([data], false, (bytes) => (bytes instanceof Error ? reject(bytes) : resolve(bytes)))
    })
  }

  /**
   * Queues `data` to be sent after every earlier send, without a promise:
   * the fast form for many small messages (consecutive writes go to the
   * kernel as one send). Errors are reported by `flush()`. Returns `false`
   * once `writableLength` reaches `writableHighWaterMark`, as
   * `net.Socket.write` does: wait for `drained()` before writing more, or
   * memory grows without bound while the peer is slow.
   */
  write(data: Uint8Array): boolean {
    if (!(data instanceof Uint8Array)) throw invalidArgType('data', 'an instance of Uint8Array', data)
    if (this.#closed) throw zcioError('ERR_ZCIO_CLOSED', 'the stream is closed')
    if (data.byteLength > 2 ** 31 - 1) throw invalidArgValue('data', `${data.byteLength} bytes`, 'is above 2^31 - 1 bytes')
    this.#writes++
    if (this.#shutWrite) {
      this.#writeDone(errnoError(-EPIPE, 'send'))
      return this.#sends.bytes < this.#hwm
    }
    this.#sends.push([item(data, false, this.#writeDone)])
    return this.#sends.bytes < this.#hwm
  }

  /** Resolves once `writableLength` is below `writableHighWaterMark` (at once if it is). */
  drained(): Promise<void> {
    if (this.#sends.bytes < this.#hwm || this.#closed) return Promise.resolve()
    return new Promise((resolve) => this.#drainers.push(resolve))
  }

  /**
   * Resolves once every `write` made before it has been sent; rejects with the
   * first error a write met (then cleared).
   */
  flush(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#flushers.push({ upTo: this.#writes, resolve, reject })
      this.#wakeFlushers()
    })
  }

  #wakeFlushers(): void {
    while (this.#flushers.length > 0 && this.#flushers[0].upTo <= this.#writesDone) {
      const f = this.#flushers.shift()!
      const e = this.#writeError
      this.#writeError = undefined
      if (e) f.reject(e)
      else f.resolve()
    }
  }

  /**
   * Zero-copy send of one or several buffers, in order (Linux 6.0): settles
   * when the kernel no longer uses any of the memory (the notification), with
   * whether it copied after all (once the kernel copied for this socket,
   * as it always does over loopback, its later zero-copy sends copy at
   * once, settling as soon as they are sent). Pool buffers go as registered buffers and
   * can't be released meanwhile (`ERR_ZCIO_BUFFER_IN_FLIGHT`); views of pool
   * or group memory are sent in place; other `Uint8Array`s are copied first
   * (see `send`). Resolves with the buffers not sent in full (`unsent`)
   * when some bytes went; rejects when none did.
   */
  sendZc(buffers: SendData | SendData[]): Promise<SendZcResult> {
    // SEND_ZC is io_uring's; the epoll backend sends with MSG_ZEROCOPY.
    if (this.#ring.backend === 'io_uring' && !(zcSupport ??= native.probe().sendZc)) {
      return Promise.reject(
        zcioError('ERR_ZCIO_UNSUPPORTED', `zero-copy send (IORING_OP_SEND_ZC) needs Linux 6.0; see probe().sendZc`),
      )
    }
    const list = Array.isArray(buffers) ? buffers : [buffers]
    return new Promise<SendZcResult>((resolve, reject) => {
      const results: (number | Error)[] = []
      let copied = false
      let left = list.length
      this.#enqueue(list, true, (bytes, c, i) => {
        results[i] = bytes
        copied ||= c
        if (--left > 0) return
        const hard = results.find((r): r is Error => r instanceof Error && (r as { errno?: number }).errno !== ECANCELED)
        const sent = results.reduce<number>((n, r) => n + (typeof r === 'number' ? r : ((r as { bytesWritten?: number }).bytesWritten ?? 0)), 0)
        const unsent = results.flatMap((r, k) => (typeof r === 'number' && r === byteLength(list[k]) ? [] : [k]))
        if (hard && sent === 0) reject(hard)
        else resolve({ bytes: sent, copied, unsent })
      })
    })
  }

  #enqueue(list: SendData[], zc: boolean, done: (bytes: number | Error, copied: boolean, i: number) => void): void {
    const fail = (e: Error): void => list.forEach((_, i) => done(e, false, i))
    if (this.#closed) return fail(zcioError('ERR_ZCIO_CLOSED', 'the stream is closed'))
    try {
      list.forEach((data, i) => checkData(data, i))
    } catch (e) {
      return fail(e as Error)
    }
    if (this.#shutWrite) return fail(errnoError(-EPIPE, 'send'))
    // Pool buffers are lent (in flight) from now, not from when their turn
    // in the queue comes: releasing one before the kernel is done with it
    // must fail, whether its send is queued here or already in the kernel.
    const lentHere: PoolSlice[] = []
    try {
      for (const d of list) {
        if (!(d instanceof Uint8Array)) {
          lend(d)
          lentHere.push(d)
        }
      }
    } catch (e) {
      for (const d of lentHere) unlend(d)
      return fail(e as Error)
    }
    const items: Item[] = list.map((data, i) =>
      item(data, zc, (b, c) => {
        if (!(data instanceof Uint8Array)) unlend(data)
        done(b, c, i)
      }),
    )
    this.#sends.push(items)
  }

  /**
   * Refuses new sends, cancels what is in flight and closes the socket;
   * resolves once every send has ended (zero-copy sends: their
   * notification), so no memory is still in the kernel's hands. Queued sends
   * reject with `ERR_ZCIO_CLOSED`. Bytes already handed to the kernel are
   * still delivered, but a zero-copy send the kernel holds longer than
   * `options.timeout` (a peer that does not read) makes close abort the
   * connection (as `destroy()`), so close always ends in bounded time.
   */
  close(options?: CloseOptions): Promise<void> {
    let timeout = CLOSE_TIMEOUT
    try {
      if (options !== undefined) {
        validateObject(options, 'options')
        const t: unknown = options.timeout ?? CLOSE_TIMEOUT
        validateInteger(t, 'options.timeout', 0, 2 ** 31 - 1)
        timeout = t
      }
    } catch (e) {
      return Promise.reject(e)
    }
    this.#close()
    if (this.#sends.live === 0) return Promise.resolve()
    if (this.#abortTimer === undefined) {
      this.#abortTimer = setTimeout(() => this.#native.abort(), timeout)
      this.#abortTimer.unref()
    }
    return new Promise((resolve) => this.#idle.push(resolve))
  }

  /**
   * Aborts the connection now: as `close()`, but what the kernel has not
   * sent yet is dropped and the peer sees a reset (`ECONNRESET`); zero-copy
   * sends get their notification at once. Resolves once every send has ended.
   */
  destroy(): Promise<void> {
    const open = !this.#closed
    this.#close()
    if (open || this.#sends.live > 0) this.#native.abort()
    if (this.#sends.live === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idle.push(resolve))
  }

  #close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#sends.close(() => zcioError('ERR_ZCIO_CLOSED', 'the stream is closed'))
    this.#native.close()
    for (const f of this.#drainers.splice(0)) f()
    const closers = [...this.#closers]
    this.#closers.clear()
    for (const f of closers) f()
  }

  /**
   * A `stream.Duplex` over this socket, receiving through `group`. Each chunk
   * is copied once into a `Buffer` (Node streams hand data on to consumers
   * that keep it) and released at once; while the readable side is full,
   * chunks are held instead, so the group runs dry and TCP flow control
   * slows the peer down. Writes go through `send`.
   */
  toNodeStream(group: ReceiveGroup, options?: NodeStreamOptions): NodeStream {
    return toNodeStream(this, group, options)
  }
}
