// `net.Socket` of `zcio.net`: a `stream.Duplex` over a TcpStream that
// receives through a BufferGroup, with `node:net`'s events, options and
// properties. It is also what `TcpStream.toNodeStream()` returns (a socket
// made connected). This module imports neither the stream nor the group
// module (both import it, through `toNodeStream`): connecting goes through
// the `Dialer` the `net` module installs (its types are in net-port.ts).

import { Duplex } from 'node:stream'
import { type Flow, type FlowHandle } from './group-brand.js'
import { abortError, zcioError } from './errors.js'
import { Addresses } from './net-addresses.js'
import { IdleTimer } from './net-idle-timer.js'
import { OnRead } from './net-onread.js'
import { type SocketOptions, checkSocketOptions } from './net-socket-options.js'
import { SocketWrites } from './net-socket-writes.js'
import { writeAfterFin } from './net-write-after-fin.js'
import { connectArgs } from './net-args.js'
import type { ConnectOptions, DialOptions, DialReport, Dialer, Lease, StreamPort } from './net-port.js'
import { socketClosed, systemError } from './net-errors.js'
import { validateSignal } from './validate.js'

let dialer: Dialer | undefined

/** Called once by the `net` module. */
export function installDialer(d: Dialer): void {
  dialer = d
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
  readonly #writes: SocketWrites = new SocketWrites({
    stream: () => this.#stream,
    destroyed: () => this.destroyed,
    activity: () => this.#idle.refresh(),
    hold: () => this.#hold(),
    destroy: (e) => this.destroy(e),
  })
  readonly #idle = new IdleTimer()
  #bytesRead = 0
  #hadError = false
  /** `TCP_NODELAY` to set once connected; undefined: leave the stream's (streams start with it on). */
  #noDelay: boolean | undefined
  #keepAlive: [boolean, number]
  /** The addresses, read from the kernel on first use (one system call each) and kept. */
  #addrs = new Addresses()
  /** `ref()`/`unref()`: an unref()ed socket keeps the loop alive only while it connects or sends. */
  #refd = true
  /** Called by destroy(): cancels the connect attempt under way. */
  #cancelDial: ((reason: Error) => void) | undefined
  /** The `onread` option: reads go to its buffer and callback. */
  readonly #onread: OnRead | undefined
  /** The end of stream came while `onread` data waited for `resume()`. */
  #endHeld = false
  /** Counts `connect()` calls: what an earlier connect (before a reconnect) reports is dropped. */
  #dials = 0
  /** The server that accepted the socket (`null` for one made by `connect()`). */
  server: unknown = null
  /** With family autoselection over several addresses: each `ip:port` tried, the connected one last. */
  autoSelectFamilyAttemptedAddresses: string[] | undefined

  constructor(options: SocketOptions = {}) {
    checkSocketOptions(options)
    super({
      allowHalfOpen: options.allowHalfOpen ?? false,
      highWaterMark: options.highWaterMark,
      readableHighWaterMark: options.readableHighWaterMark,
      writableHighWaterMark: options.writableHighWaterMark,
    })
    this.#onread = options.onread === undefined || options.onread === null ? undefined : new OnRead(options.onread)
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
    if (!dialed) this.#writes.release()
    if (this.#wantRead) {
      this.#wantRead = false
      this._read()
    } else if (read) this.read(0)
    this.#hold()
  }

  /** Back to a socket never connected (as net.Socket's `connect()` after `'close'`): the byte counts start again, as a new handle's. */
  #undestroy(): void {
    this.#bytesRead = 0
    this.#refd = true
    this.#endHeld = false
    this.#onread?.reset()
    this.#writes.reset()
    this.#stream = undefined
    this.#flow = undefined
    this.#receiving = undefined
    this.#paused = false
    this.#wantRead = false
    this.#hadError = false
    this.#addrs = new Addresses()
    if (Object.hasOwn(this, 'write')) delete (this as { write?: unknown }).write
    ;(this as unknown as { _undestroy(): void })._undestroy()
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
    const dial = ++this.#dials
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
      cancelled: () => this.destroyed || dial !== this.#dials,
    }
    dialer.dial(lease.ring, options as DialOptions, report).then(
      (stream) => {
        if (dial !== this.#dials) {
          // Destroyed, then connected again: this attempt is over.
          void stream.close()
          return
        }
        this.#connecting = false
        this.#cancelDial = undefined
        if (this.destroyed) {
          void stream.close()
          return
        }
        this[kAttach](stream, lease.flow, undefined, false, true)
        this.emit('connect')
        this.emit('ready')
        this.#writes.release()
        // Reading starts unless the socket is paused after 'connect' (net.Socket's afterConnect).
        if (!this.destroyed && this.readable && !this.isPaused()) {
          this.read(0)
          this.#hold()
        }
      },
      (err: Error) => {
        if (dial !== this.#dials) return
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
    this.#idle.refresh()
    if (this.#onread !== undefined) {
      try {
        if (!this.#onread.deliver(this, data)) this.#stopReceiving()
      } catch (e) {
        // A buffer the option cannot give (ENOBUFS, not a Uint8Array), or the callback threw.
        this.destroy(e as Error)
      }
      return
    }
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
      if (this.#onread?.holding || this.#onread?.stopped) {
        this.#endHeld = true
        return
      }
      this.#onread?.end()
      this.push(null)
      // 'end' comes now if nothing is buffered, even with no reader (as
      // net.Socket's), so a socket nobody reads still closes.
      this.read(0)
    }
  }

  override _read(): void {
    if (this.#onread?.stopped) return
    if (this.#stream === undefined || this.#flow === undefined) {
      this.#wantRead = true
      return
    }
    if (this.#receiving === undefined) {
      this.#paused = false
      try {
        // A receive of an earlier connection (before a reconnect) reports nothing.
        const stream = this.#stream
        this.#receiving = this.#flow.receive(stream, {
          onData: (data) => {
            if (this.#stream === stream) this.#onData(data)
          },
          onEnd: (error) => {
            if (this.#stream === stream) this.#onEnd(error)
          },
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

  #stopReceiving(): void {
    if (this.#paused) return
    this.#paused = true
    this.#receiving?.pause()
    this.#hold()
  }

  /** With `onread`, pausing stops reading at once (net.Socket's). */
  override pause(): this {
    if (this.#onread !== undefined && !this.#onread.stopped) {
      this.#onread.stopped = true
      this.#stopReceiving()
    }
    return super.pause()
  }

  /** With `onread`, resuming hands over what waited, then reads on. */
  override resume(): this {
    const onread = this.#onread
    if (onread?.stopped && !this.destroyed) {
      if (!onread.resume(this)) return super.resume()
      // A resume() inside the callback hands over nothing held: the outer one ends.
      if (this.#endHeld && !onread.delivering) {
        this.#endHeld = false
        onread.end()
        this.push(null)
        this.read(0)
      } else if (this.#paused && this.#receiving !== undefined) {
        this.#paused = false
        this.#receiving.resume()
        this.#hold()
      }
    }
    return super.resume()
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: Callback): void {
    this.#writes.writev([{ chunk }], cb)
  }

  override _writev(chunks: { chunk: Buffer }[], cb: Callback): void {
    this.#writes.writev(chunks, cb)
  }

  override _final(cb: Callback): void {
    this.#writes.final(cb)
  }

  override _destroy(err: Error | null, cb: Callback): void {
    this.#hadError = err !== null && err !== undefined
    this.#idle.clear()
    this.#writes.abandon()
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
    ms = IdleTimer.check(ms, callback)
    this.#idle.set(ms, () => this.emit('timeout'))
    if (callback) {
      if (ms === 0) this.removeListener('timeout', callback)
      else this.once('timeout', callback)
    }
    return this
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
    this.#lease?.hold(this.#connecting || this.#writes.watching || (this.#refd && reading))
  }

  /** The local address (`{ address, family, port }`), or `{}` before the socket connects and for Unix sockets. */
  address(): { address: string; family: string; port: number } | Record<string, never> {
    const l = this.#addrs.local
    return l.address === undefined ? {} : { address: l.address, family: l.family!, port: l.port! }
  }

  get timeout(): number | undefined {
    return this.#idle.ms
  }

  /** Assignable, as net.Socket's property (the timer is set by `setTimeout()`). */
  set timeout(ms: number | undefined) {
    this.#idle.ms = ms
  }

  /** `true` while `connect()` runs. */
  get connecting(): boolean {
    return this.#connecting
  }

  /** `true` until the socket is connected, and again once it is destroyed. */
  get pending(): boolean {
    return this.#stream === undefined || this.destroyed
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
    // Read on the prototype (not a socket): undefined, as net.Socket's.
    if (!(#writes in this)) return undefined as unknown as number
    return this.#writes.written(this.writableLength)
  }

  /** Bytes written and not yet taken by the kernel: those the writable side holds and those queued for the kernel. */
  get bufferSize(): number {
    return this.writableLength + (this.#stream !== undefined && !this.#stream.closed ? this.#stream.writableLength : 0)
  }
}
