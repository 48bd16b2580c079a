// A `stream.Duplex` over a TcpStream, receiving through a BufferGroup, that
// behaves as a `net.Socket` where Node's own modules (`http`...) look:
// half-open only when asked, end() after the peer's end, the socket options
// and addresses, and an idle timeout with its 'timeout' event.

import { Duplex } from 'node:stream'
import type { SocketAddress } from './address.js'
import { type Flow, type FlowHandle, flowOf } from './group-brand.js'
import { invalidArgType, outOfRange } from './errors.js'
import { validateInteger, validateObject } from './validate.js'

/** Options of `toNodeStream()`. */
export interface NodeStreamOptions {
  /**
   * Keep the writable side open after the peer ended (as `net.Socket`'s
   * option of that name). Default `false`: the end of the peer's data ends
   * this side too, and the stream closes once both are done.
   */
  allowHalfOpen?: boolean
  /** The readable side's high-water mark in bytes (Node's default when omitted). */
  readableHighWaterMark?: number
}

/** The Duplex of `toNodeStream()`: a `stream.Duplex` with the parts of `net.Socket` that Node's modules use. */
export interface NodeStream extends Duplex {
  /** `TCP_NODELAY` (no effect on Unix sockets). */
  setNoDelay(noDelay?: boolean): this
  /** `SO_KEEPALIVE`, the first probe after `initialDelay` ms of silence (0: the system's default). */
  setKeepAlive(enable?: boolean, initialDelay?: number): this
  /** Emits 'timeout' after `ms` without data in either direction (0 turns it off); the stream stays open. */
  setTimeout(ms: number, callback?: () => void): this
  readonly timeout: number | undefined
  readonly remoteAddress: string | undefined
  readonly remotePort: number | undefined
  readonly remoteFamily: string | undefined
  readonly localAddress: string | undefined
  readonly localPort: number | undefined
  readonly bytesRead: number
}

/**
 * The members of a `TcpStream` the Duplex uses, named here so that this
 * module does not import the stream module (which imports this one).
 */
export interface StreamPort {
  readonly closed: boolean
  readonly localAddress: SocketAddress
  readonly remoteAddress: SocketAddress
  send(data: Uint8Array): Promise<unknown>
  shutdown(how: 'write'): void
  close(): Promise<void>
  setNoDelay(noDelay: boolean): unknown
}

const ENOTCONN = 'ENOTCONN'
const kData = Symbol('data')
const kEnd = Symbol('end')

class ZcioSocket extends Duplex implements NodeStream {
  readonly #stream: StreamPort
  readonly #flow: Flow
  #receiving: FlowHandle | undefined
  #paused = false
  #timer: NodeJS.Timeout | undefined
  #timeout: number | undefined
  #bytesRead = 0
  readonly #remote: { address?: string; port?: number; family?: string }
  readonly #local: { address?: string; port?: number }

  constructor(stream: StreamPort, flow: Flow, options: NodeStreamOptions) {
    super({ allowHalfOpen: options.allowHalfOpen ?? false, readableHighWaterMark: options.readableHighWaterMark })
    this.#stream = stream
    this.#flow = flow
    this.#remote = address(() => stream.remoteAddress)
    this.#local = address(() => stream.localAddress)
  }

  /** A chunk came: copied once (Node streams hand data on to consumers that keep it). */
  [kData](data: Uint8Array): void {
    this.#bytesRead += data.length
    this.#timer?.refresh()
    if (!this.push(Buffer.from(data)) && !this.#paused) {
      // Full: stop taking data; it waits in the socket (TCP flow control).
      this.#paused = true
      this.#receiving?.pause()
    }
  }

  [kEnd](error?: Error): void {
    this.#receiving = undefined
    // The TcpStream (or its ring) was closed under the Duplex: a close, not a failure.
    if (error && this.#stream.closed) this.destroy()
    else if (error) this.destroy(error)
    else this.push(null)
  }

  override _read(): void {
    if (this.#receiving === undefined) {
      this.#paused = false
      try {
        this.#receiving = this.#flow.receive(this.#stream, {
          onData: (data) => this[kData](data),
          onEnd: (error) => this[kEnd](error),
        })
      } catch (e) {
        this.destroy(e as Error)
      }
    } else if (this.#paused) {
      this.#paused = false
      this.#receiving.resume()
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (error?: Error | null) => void): void {
    this.#timer?.refresh()
    this.#stream.send(chunk).then(() => {
      this.#timer?.refresh()
      cb()
    }, cb)
  }

  override _final(cb: (error?: Error | null) => void): void {
    try {
      this.#stream.shutdown('write')
      cb()
    } catch (e) {
      // The peer is gone already (net.Socket treats it the same way).
      cb((e as { code?: string }).code === ENOTCONN ? null : (e as Error))
    }
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.#clearTimer()
    this.#receiving?.stop()
    this.#stream.close().then(() => cb(err), cb)
  }

  setNoDelay(noDelay = true): this {
    if (!this.#stream.closed) this.#stream.setNoDelay(Boolean(noDelay))
    return this
  }

  setKeepAlive(enable = false, initialDelay = 0): this {
    if (typeof initialDelay !== 'number' || !(initialDelay >= 0)) initialDelay = 0
    if (!this.#stream.closed) this.#flow.native(this.#stream).setKeepAlive(Boolean(enable), Math.min(Math.floor(initialDelay / 1000), 2 ** 31 - 1))
    return this
  }

  setTimeout(ms: number, callback?: () => void): this {
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

  get timeout(): number | undefined {
    return this.#timeout
  }

  get remoteAddress(): string | undefined {
    return this.#remote.address
  }

  get remotePort(): number | undefined {
    return this.#remote.port
  }

  get remoteFamily(): string | undefined {
    return this.#remote.family
  }

  get localAddress(): string | undefined {
    return this.#local.address
  }

  get localPort(): number | undefined {
    return this.#local.port
  }

  get bytesRead(): number {
    return this.#bytesRead
  }
}

/** An IP address in `net.Socket`'s terms (a Unix socket has none). */
function address(get: () => SocketAddress): { address?: string; port?: number; family?: string } {
  try {
    const a = get()
    if (a.family === 'unix') return {}
    return { address: a.address ?? undefined, port: a.port ?? undefined, family: a.family }
  } catch {
    return {}
  }
}

/**
 * A `stream.Duplex` over `stream`, receiving through `group`. Each chunk is
 * copied once into a `Buffer` and released at once, so the stream holds no
 * group buffer; while the readable side is full its receive pauses and the
 * data waits in the socket (TCP flow control slows the peer down), so a
 * reader that stops holds nothing other streams of the group need. Writes
 * go through `send`; `end()` shuts the write side down after them.
 */
export function toNodeStream(stream: StreamPort, group: unknown, options: NodeStreamOptions = {}): NodeStream {
  const flow = flowOf(group)
  if (flow === undefined) throw invalidArgType('group', 'an instance of BufferGroup', group)
  flow.native(stream) // ERR_INVALID_ARG_TYPE for anything but a TcpStream
  validateObject(options, 'options')
  if (options.allowHalfOpen !== undefined && typeof options.allowHalfOpen !== 'boolean') {
    throw invalidArgType('options.allowHalfOpen', 'of type boolean', options.allowHalfOpen)
  }
  if (options.readableHighWaterMark !== undefined) validateInteger(options.readableHighWaterMark, 'options.readableHighWaterMark', 0, 2 ** 31 - 1)
  return new ZcioSocket(stream, flow, options)
}
