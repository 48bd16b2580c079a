// `net.Socket` of `zcio.net`: a `stream.Duplex` over a TcpStream that
// receives through a BufferGroup, with `node:net`'s events, options and
// properties. It is also what `TcpStream.toNodeStream()` returns (a socket
// made connected). This module imports neither the stream nor the group
// module (both import it, through `toNodeStream`): connecting goes through
// the `Dialer` the `net` module installs (its types are in net-port.ts).

import { Duplex } from 'node:stream'
import { type Flow, type FlowHandle } from './group-brand.js'
import { abortError, invalidArgType, invalidArgValue, outOfRange, zcioError } from './errors.js'
import { Addresses } from './net-addresses.js'
import { connectArgs } from './net-args.js'
import type { ConnectOptions, DialOptions, DialReport, Dialer, Lease, StreamPort } from './net-port.js'
import { socketClosed, systemError } from './net-errors.js'
import { validateObject, validateSignal } from './validate.js'

let dialer: Dialer | undefined

/** Called once by the `net` module. */
export function installDialer(d: Dialer): void {
  dialer = d
}

/** Options of `new net.Socket()` (and of `net.connect()`, with the address). */
export interface SocketOptions {
  /** Keep the writable side open after the peer's end (default `false`). */
  allowHalfOpen?: boolean
  /** Bytes the readable side holds before the socket stops taking data (its data then waits in the kernel). */
  readableHighWaterMark?: number
  /** Bytes of writes held before `write()` returns `false`. */
  writableHighWaterMark?: number
  /** Both high-water marks at once. */
  highWaterMark?: number
  /** `TCP_NODELAY` once connected; default `true`, as zcio streams start (Node's is `false`: Nagle's algorithm costs small writes 40 ms). */
  noDelay?: boolean
  /** `SO_KEEPALIVE` once connected (default `false`). */
  keepAlive?: boolean
  /** Milliseconds of silence before the first keep-alive probe (0: the system's default). */
  keepAliveInitialDelay?: number
  /** Destroys the socket with an `AbortError` when aborted. */
  signal?: AbortSignal
  /** The ring to run on (with `group`); default: the thread's default ring. */
  ring?: unknown
  /** The BufferGroup of `ring` to receive through. */
  group?: unknown
}

/** @internal Makes a socket connected over `stream`. */
export const kAttach = Symbol('attach')
/** @internal A server's socket options applied at accept. */
export const kAccepted = Symbol('accepted')

type Callback = (error?: Error | null) => void

/**
 * A TCP or Unix stream socket with `node:net`'s API. `'data'` hands out
 * Buffers the consumer owns: each chunk is copied once out of the receive
 * buffer (the kernel copied it into that buffer), which goes back to the
 * group at once, so a socket holds no group buffer. While the readable side
 * is full the receive pauses and data waits in the kernel (TCP flow control).
 */
export class Socket extends Duplex {
  #stream: StreamPort | undefined
  #flow: Flow | undefined
  #lease: Lease | undefined
  /** The lease of a ring and group given to the constructor. */
  #given: Lease | undefined
  #connecting = false
  #receiving: FlowHandle | undefined
  #paused = false
  #wantRead = false
  /** What waits for the connection: the writes' callbacks fail if it never comes. */
  #waiting: { go(): void; cb?: Callback }[] = []
  /** Bytes of the `_writev` whose callback waits for the sends to drain (counted once in `bytesWritten`). */
  #inHand = 0
  #timer: NodeJS.Timeout | undefined
  #timeout: number | undefined
  #bytesRead = 0
  #bytesSent = 0
  #hadError = false
  /** A `flush()` watches the sends; writes came after it started. */
  #watching = false
  #unwatched = false
  /** `TCP_NODELAY` to set once connected; undefined: leave the stream's (streams start with it on). */
  #noDelay: boolean | undefined
  #keepAlive: [boolean, number]
  /** The addresses, read from the kernel on first use (one system call each) and kept. */
  #addrs = new Addresses()
  /** `ref()`/`unref()`: an unref()ed socket keeps the loop alive only while it connects or sends. */
  #refd = true
  /** Called by destroy(): cancels the connect attempt under way. */
  #cancelDial: ((reason: Error) => void) | undefined
  /** The server that accepted the socket (`null` for one made by `connect()`). */
  server: unknown = null
  /** With family autoselection over several addresses: each `ip:port` tried, the connected one last. */
  autoSelectFamilyAttemptedAddresses: string[] | undefined

  constructor(options: SocketOptions = {}) {
    validateObject(options as unknown, 'options')
    for (const k of ['objectMode', 'readableObjectMode', 'writableObjectMode'] as const) {
      const v = (options as Record<string, unknown>)[k]
      if (v) throw invalidArgValue(`options.${k}`, v, 'is not supported')
    }
    if (options.allowHalfOpen !== undefined && typeof options.allowHalfOpen !== 'boolean') {
      throw invalidArgType('options.allowHalfOpen', 'of type boolean', options.allowHalfOpen)
    }
    super({
      allowHalfOpen: options.allowHalfOpen ?? false,
      highWaterMark: options.highWaterMark,
      readableHighWaterMark: options.readableHighWaterMark,
      writableHighWaterMark: options.writableHighWaterMark,
    })
    this.#noDelay = options.noDelay
    this.#keepAlive = [options.keepAlive ?? false, options.keepAliveInitialDelay ?? 0]
    if (options.ring !== undefined || options.group !== undefined) {
      // Checked now (ERR_INVALID_ARG_TYPE); a given ring is never released here.
      if (dialer === undefined) throw zcioError('ERR_INTERNAL_ASSERTION', 'zcio.net is not loaded')
      this.#given = dialer.lease(options.ring, options.group)
    }
    const signal = validateSignal(options.signal, 'options.signal')
    if (signal !== undefined) {
      if (signal.aborted) process.nextTick(() => this.destroy(abortError(signal.reason)))
      else {
        const onAbort = (): void => {
          this.destroy(abortError(signal.reason))
        }
        signal.addEventListener('abort', onAbort, { once: true })
        this.once('close', () => signal.removeEventListener('abort', onAbort))
      }
    }
  }

  /** @internal Connected over `stream` (by `connect()`, a server's accept or `toNodeStream()`). */
  [kAttach](stream: StreamPort, flow: Flow, lease: Lease | undefined, read = true, dialed = false): void {
    this.#stream = stream
    this.#addrs.of(stream)
    this.#flow = flow
    this.#lease ??= lease
    try {
      // zcio streams start with TCP_NODELAY on: only turning it off costs a call.
      if (this.#noDelay === false && this.#inet) stream.setNoDelay(false)
      if (this.#keepAlive[0]) this.setKeepAlive(true, this.#keepAlive[1])
    } catch {
      // The peer may be gone already; the first read or write reports it.
    }
    if (!dialed) this.#release()
    if (this.#wantRead) {
      this.#wantRead = false
      this._read()
    } else if (read) this.read(0)
    this.#hold()
  }

  /** Back to a socket never connected, keeping the byte counts (as net.Socket's `connect()` after `'close'`). */
  #undestroy(): void {
    this.#stream = undefined
    this.#flow = undefined
    this.#receiving = undefined
    this.#paused = false
    this.#wantRead = false
    this.#hadError = false
    this.#watching = false
    this.#unwatched = false
    this.#inHand = 0
    this.#addrs = new Addresses()
    if (Object.hasOwn(this, 'write')) delete (this as { write?: unknown }).write
    ;(this as unknown as { _undestroy(): void })._undestroy()
  }

  /** Runs what waited for the connection (after `'connect'` for a dialled socket, as net.Socket's writes). */
  #release(): void {
    for (const w of this.#waiting.splice(0)) w.go()
  }

  /** @internal The options a server gives its sockets. */
  [kAccepted](noDelay: boolean | undefined, keepAlive: boolean, keepAliveInitialDelay: number): void {
    this.#noDelay = noDelay
    this.#keepAlive = [keepAlive, keepAliveInitialDelay]
  }

  /**
   * Connects (`connect(options[, listener])`, `connect(port[, host][,
   * listener])`, `connect(path[, listener])`): emits `'connect'` and
   * `'ready'`, or `'error'` (`ECONNREFUSED` with `address` and `port`,
   * `ENOTFOUND`...) then `'close'`. Writes made meanwhile wait for it.
   */
  connect(options: ConnectOptions, connectListener?: () => void): this
  connect(port: number | string, host?: string, connectListener?: () => void): this
  connect(port: number | string, connectListener?: () => void): this
  connect(path: string, connectListener?: () => void): this
  connect(...args: unknown[]): this {
    const { options, callback } = connectArgs(args)
    // A closed socket connects again (net.Socket's reconnect).
    if (this.destroyed && this.closed && !this.#connecting) this.#undestroy()
    if (this.#stream !== undefined || this.#connecting) throw zcioError('ERR_SOCKET_CONNECTING', 'Socket is already connecting or connected')
    if (this.destroyed) throw zcioError('ERR_SOCKET_CLOSED', 'Socket is closed')
    if (dialer === undefined) throw zcioError('ERR_INTERNAL_ASSERTION', 'zcio.net is not loaded')
    if (options.timeout !== undefined) this.setTimeout(options.timeout as number)
    if (callback) this.once('connect', callback)
    const lease = this.#given ?? dialer.lease(undefined, undefined)
    this.#lease = lease
    this.#connecting = true
    this.#hold()
    const report: DialReport = {
      emit: (event, ...a) => this.emit(event, ...a),
      attempted: (list) => {
        this.autoSelectFamilyAttemptedAddresses = list
      },
      onCancel: (cancel) => {
        this.#cancelDial = cancel
      },
      cancelled: () => this.destroyed,
    }
    dialer.dial(lease.ring, options as DialOptions, report).then(
      (stream) => {
        this.#connecting = false
        this.#cancelDial = undefined
        if (this.destroyed) {
          void stream.close()
          return
        }
        // A socket paused before it connected does not start reading (net.Socket's).
        this[kAttach](stream, lease.flow, undefined, !this.isPaused(), true)
        this.emit('connect')
        this.emit('ready')
        this.#release()
      },
      (err: Error) => {
        this.#connecting = false
        this.#cancelDial = undefined
        if (!this.destroyed) this.destroy(err)
      },
    )
    return this
  }

  /** A chunk came: copied once (Node streams hand data on to consumers that keep it). */
  #onData(data: Uint8Array): void {
    this.#bytesRead += data.length
    this.#timer?.refresh()
    if (!this.push(Buffer.from(data)) && !this.#paused) {
      // Full: stop taking data; it waits in the socket (TCP flow control).
      this.#paused = true
      this.#receiving?.pause()
      this.#hold()
    }
  }

  #onEnd(error?: Error): void {
    this.#receiving = undefined
    this.#hold()
    if (this.destroyed) return
    // The TcpStream (or its ring) was closed under the socket: a close, not a failure.
    if (error && this.#stream?.closed) this.destroy()
    else if (error) this.destroy(systemError(error, 'read'))
    else {
      // After the peer's end, a write once this side ended too fails as
      // net.Socket's does (EPIPE), not as a write after end.
      if (!this.allowHalfOpen) this.prependOnceListener('end', () => (this.write = writeAfterFin))
      this.push(null)
      // 'end' comes now if nothing is buffered, even with no reader (as
      // net.Socket's), so a socket nobody reads still closes.
      this.read(0)
    }
  }

  override _read(): void {
    if (this.#stream === undefined || this.#flow === undefined) {
      this.#wantRead = true
      return
    }
    if (this.#receiving === undefined) {
      this.#paused = false
      try {
        this.#receiving = this.#flow.receive(this.#stream, {
          onData: (data) => this.#onData(data),
          onEnd: (error) => this.#onEnd(error),
        })
      } catch (e) {
        this.destroy(e as Error)
      }
      this.#hold()
    } else if (this.#paused) {
      this.#paused = false
      this.#receiving.resume()
      this.#hold()
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: Callback): void {
    this._writev([{ chunk }], cb)
  }

  /**
   * Every chunk queued at once (they go to the kernel as one send). Done
   * as soon as the stream took them while it is under its high-water mark
   * (as a write the kernel took at once is for net.Socket), else once it
   * drained; a send that fails later destroys the socket with its error.
   */
  override _writev(chunks: { chunk: Buffer }[], cb: Callback): void {
    const stream = this.#stream
    if (stream === undefined) {
      this.#waiting.push({ go: () => this._writev(chunks, cb), cb })
      return
    }
    this.#timer?.refresh()
    let room = true
    try {
      for (const { chunk } of chunks) {
        room = stream.write(chunk)
        this.#bytesSent += chunk.length
      }
    } catch (e) {
      cb(stream.closed ? null : (e as Error))
      return
    }
    this.#watch(stream)
    if (room) return cb()
    for (const { chunk } of chunks) this.#inHand += chunk.length
    stream.drained().then(
      () => {
        this.#inHand = 0
        cb()
      },
      (e: Error) => {
        this.#inHand = 0
        cb(e)
      },
    )
  }

  /**
   * Watches the stream's sends for a failure: one `flush()` at a time
   * (not one per write), another after it if writes came meanwhile.
   */
  #watch(stream: StreamPort): void {
    this.#unwatched = true
    if (this.#watching) return
    this.#watching = true
    this.#unwatched = false
    this.#hold()
    stream.flush().then(
      () => {
        this.#watching = false
        this.#timer?.refresh()
        if (this.#unwatched && !this.destroyed) this.#watch(stream)
        else this.#hold()
      },
      (e: Error) => {
        this.#watching = false
        this.#hold()
        // Closed under the write (destroy): not the write's failure.
        if (this.destroyed || (stream.closed && (e as { code?: string }).code === 'ERR_ZCIO_CLOSED')) return
        this.destroy(systemError(e, 'write'))
      },
    )
  }

  override _final(cb: Callback): void {
    const stream = this.#stream
    if (stream === undefined) {
      this.#waiting.push({ go: () => this._final(cb) })
      return
    }
    const gone = (e: unknown, syscall?: string): void => {
      // The peer is gone already (net.Socket treats it the same way).
      const code = (e as { code?: string }).code
      cb(code === 'ENOTCONN' || code === 'ERR_ZCIO_CLOSED' ? null : systemError(e, syscall))
    }
    try {
      stream.shutdown('write')
    } catch (e) {
      return gone(e, 'shutdown')
    }
    // 'finish' (and with it the close of a socket whose peer ended) waits
    // until every write went and the write side is shut, as net.Socket's
    // waits for its shutdown request: closing earlier would drop queued sends.
    stream.flush().then(() => cb(), (e: unknown) => gone(e))
  }

  override _destroy(err: Error | null, cb: Callback): void {
    this.#hadError = err !== null && err !== undefined
    this.#clearTimer()
    for (const w of this.#waiting.splice(0)) {
      w.cb?.(zcioError('ERR_SOCKET_CLOSED_BEFORE_CONNECTION', 'Socket closed before the connection was established'))
    }
    this.#receiving?.stop()
    this.#receiving = undefined
    this.#cancelDial?.(socketClosed())
    this.#cancelDial = undefined
    this.#connecting = false
    const lease = this.#lease
    this.#lease = undefined
    const done = (): void => {
      lease?.release()
      cb(err)
    }
    const stream = this.#stream
    if (stream === undefined || stream.closed) done()
    else stream.close().then(done, done)
  }

  /** `'close'` carries `hadError`, as `net.Socket`'s. */
  override emit(event: string | symbol, ...args: any[]): boolean {
    if (event === 'close' && args.length === 0) return super.emit('close', this.#hadError)
    return super.emit(event, ...args)
  }

  /** Destroys the socket with a reset (`RST`) instead of an orderly close: the peer sees `ECONNRESET`. */
  resetAndDestroy(): this {
    if (this.#connecting) {
      this.once('connect', () => this.resetAndDestroy())
      return this
    }
    const stream = this.#stream
    if (stream === undefined) return this.destroy(socketClosed())
    if (!stream.closed) void stream.destroy()
    return this.destroy()
  }

  /** Ends the writable side after what is written, then destroys (as `net.Socket`'s). */
  destroySoon(): void {
    if (this.writable) this.end()
    if (this.writableFinished) this.destroy()
    else this.once('finish', () => this.destroy())
  }

  setNoDelay(noDelay = true): this {
    this.#noDelay = Boolean(noDelay)
    if (this.#stream !== undefined && !this.#stream.closed && this.#inet) this.#stream.setNoDelay(this.#noDelay)
    return this
  }

  setKeepAlive(enable = false, initialDelay = 0): this {
    if (typeof initialDelay !== 'number' || !(initialDelay >= 0)) initialDelay = 0
    this.#keepAlive = [Boolean(enable), initialDelay]
    const stream = this.#stream
    if (stream !== undefined && this.#flow !== undefined && !stream.closed && this.#inet) {
      this.#flow.native(stream).setKeepAlive(Boolean(enable), Math.min(Math.floor(initialDelay / 1000), 2 ** 31 - 1))
    }
    return this
  }

  /** Emits `'timeout'` after `ms` without data in either direction (0 turns it off); the socket stays open. */
  setTimeout(ms: number, callback?: () => void): this {
    if (this.destroyed) return this
    if (typeof ms !== 'number') throw invalidArgType('msecs', 'of type number', ms)
    if (!(ms >= 0) || ms > 2 ** 31 - 1) throw outOfRange('msecs', `>= 0 && <= ${2 ** 31 - 1}`, ms)
    if (callback !== undefined && typeof callback !== 'function') throw invalidArgType('callback', 'of type function', callback)
    this.#clearTimer()
    ms = Math.floor(ms)
    if (ms === 0) {
      if (callback) this.removeListener('timeout', callback)
      return this
    }
    this.#timeout = ms
    // Refreshed by every read and write; after a 'timeout' activity starts it again, as net.Socket's.
    this.#timer = setTimeout(() => this.emit('timeout'), ms).unref()
    if (callback) this.once('timeout', callback)
    return this
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#timeout = undefined
  }

  /**
   * Undoes `unref()`: the open socket keeps the event loop alive again (the
   * default). Returns the socket.
   */
  ref(): this {
    this.#refd = true
    this.#hold()
    return this
  }

  /**
   * Lets the process exit while the socket is open and idle, as
   * `net.Socket`'s: it still keeps the loop alive while it connects and
   * while writes are being sent. On a ring given in the options the ring
   * decides (`ring.unref()`); this applies to the default ring. Returns the
   * socket.
   */
  unref(): this {
    this.#refd = false
    this.#hold()
    return this
  }

  /**
   * Holds the loop as a libuv handle does: while it connects, while writes
   * are being sent, and (unless `unref()`ed) while it reads; a connected
   * socket that is paused with nothing to send does not keep the process.
   */
  #hold(): void {
    const reading = this.#receiving !== undefined && !this.#paused
    this.#lease?.hold(this.#connecting || this.#watching || (this.#refd && reading))
  }

  /** The local address (`{ address, family, port }`), or `{}` before the socket connects and for Unix sockets. */
  address(): { address: string; family: string; port: number } | Record<string, never> {
    const l = this.#addrs.local
    return l.address === undefined ? {} : { address: l.address, family: l.family!, port: l.port! }
  }

  get timeout(): number | undefined {
    return this.#timeout
  }

  /** Assignable, as net.Socket's property (the timer is set by `setTimeout()`). */
  set timeout(ms: number | undefined) {
    this.#timeout = ms
  }

  /** `true` while `connect()` runs. */
  get connecting(): boolean {
    return this.#connecting
  }

  /** `true` until the socket is connected. */
  get pending(): boolean {
    return this.#stream === undefined
  }

  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.#connecting) return 'opening'
    if (this.readable && this.writable) return 'open'
    if (this.readable) return 'readOnly'
    if (this.writable) return 'writeOnly'
    return 'closed'
  }

  /** A TCP socket (a Unix one has no TCP options). */
  get #inet(): boolean {
    return this.#addrs.local.family !== undefined
  }

  get remoteAddress(): string | undefined {
    return this.#addrs.remote.address
  }

  get remotePort(): number | undefined {
    return this.#addrs.remote.port
  }

  get remoteFamily(): string | undefined {
    return this.#addrs.remote.family
  }

  get localAddress(): string | undefined {
    return this.#addrs.local.address
  }

  get localPort(): number | undefined {
    return this.#addrs.local.port
  }

  get localFamily(): string | undefined {
    return this.#addrs.local.family
  }

  get bytesRead(): number {
    return this.#bytesRead
  }

  /** Bytes handed to the socket: sent, queued for the kernel, and held by the writable side. */
  get bytesWritten(): number {
    return this.#bytesSent + this.writableLength - this.#inHand
  }

  /** Bytes written and not yet taken by the kernel: those the writable side holds and those queued for the kernel. */
  get bufferSize(): number {
    return this.writableLength + (this.#stream !== undefined && !this.#stream.closed ? this.#stream.writableLength : 0)
  }
}

/** `write()` once the peer ended and the socket is not half-open: `EPIPE` after this side's own end (net.Socket's `writeAfterFIN`). */
function writeAfterFin(this: Socket, chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
  if (!this.writableEnded) return Duplex.prototype.write.call(this, chunk, encoding as BufferEncoding, cb as Callback)
  const callback = typeof encoding === 'function' ? encoding : cb
  const er = Object.assign(new Error('This socket has been ended by the other party'), { code: 'EPIPE' })
  if (typeof callback === 'function') process.nextTick(callback as Callback, er)
  this.destroy(er)
  return false
}
