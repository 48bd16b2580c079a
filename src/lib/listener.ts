// TcpListener: a listening socket; accepted connections arrive as TcpStreams.
//
// Accepts are one-shot operations, a few in flight at a time, and only while
// the ready queue (connections accepted but not yet taken by `accept()`) has
// room: beyond its limit connections wait in the kernel's listen queue, where
// they cost no descriptor. A failed accept (`EMFILE`...) leaves its
// connection queued; it is reported and retried after a growing delay, and
// never ends the listener.

import { closeSync } from 'node:fs'
import { native, type NativeListener } from './binding.js'
import { type ZcioError, errnoError, invalidArgType, invalidThis, zcioError } from './errors.js'
import { type Completer, Ring, ringInternals } from './ring.js'
import { validateInteger } from './validate.js'
import { type CheckedAddress, type InetAddress, type InetAddressOptions, type ListenOptions, type SocketAddress, type UnixAddress, type UnixAddressOptions, checkAddress, resolveHost } from './address.js'
import { TcpStream, onStreamClose } from './stream.js'

/** Failures that mean the listening socket itself is unusable. */
const FATAL = new Set([-9 /* EBADF */, -14 /* EFAULT */, -22 /* EINVAL */, -88 /* ENOTSOCK */])
/** Accepts in flight at most (each takes one connection). */
const WINDOW = 8
const BACKOFF_MIN_MS = 1
const BACKOFF_MAX_MS = 1000
const MAX_I32 = 2 ** 31 - 1

type Taker<A extends SocketAddress> = { resolve: (s: TcpStream<A> | null) => void; reject: (e: Error) => void }
/** Open connections of one listener; shared with their close hooks. */
type Count = { open: number }

/** Connections collected without `close()` leave the count too. */
const collected = new FinalizationRegistry<Count>((c) => c.open--)

let isListener: (x: unknown) => x is TcpListener

function checkMax(value: unknown, name: string): number {
  if (value === Infinity) return value
  validateInteger(value, name, 0, MAX_I32)
  return value
}

type Limits = {
  backlog: number
  readyLimit: number
  maxConnections: number
  onError: ((err: ZcioError) => void) | undefined
  ipv6Only: boolean
  reusePort: boolean
}

function checkListenOptions(options: ListenOptions): Limits {
  const backlog = options.backlog === undefined ? 511 : options.backlog
  validateInteger(backlog, 'options.backlog', 0, MAX_I32)
  const readyLimit = options.readyLimit === undefined ? backlog : options.readyLimit
  validateInteger(readyLimit, 'options.readyLimit', 0, MAX_I32)
  const maxConnections = checkMax(options.maxConnections === undefined ? Infinity : options.maxConnections, 'options.maxConnections')
  const onError = options.onError
  if (onError !== undefined && typeof onError !== 'function') throw invalidArgType('options.onError', 'of type function', onError)
  for (const k of ['ipv6Only', 'reusePort'] as const) {
    if (options[k] !== undefined && typeof options[k] !== 'boolean') throw invalidArgType(`options.${k}`, 'of type boolean', options[k])
  }
  return { backlog, readyLimit, maxConnections, onError, ipv6Only: options.ipv6Only ?? false, reusePort: options.reusePort ?? false }
}

let bindTo: (ring: Ring, a: CheckedAddress, limits: Limits) => TcpListener

/**
 * A listening socket; accepted connections arrive as `TcpStream`s, with
 * `TCP_NODELAY` on (inherited from the listening socket). Accepting starts
 * with the first `accept()`. `A` is the kind of its address (and of its
 * streams'): `InetAddress` for TCP, `UnixAddress` for a Unix path.
 */
export class TcpListener<A extends SocketAddress = SocketAddress> {
  readonly #native: NativeListener
  readonly #ring: Ring
  readonly #completer: Completer
  readonly #readyLimit: number
  readonly #onError: ((err: ZcioError) => void) | undefined
  #maxConnections: number
  #started = false
  /** Accepts in the kernel. */
  #inFlight = 0
  #ready: TcpStream<A>[] = []
  #takers: Taker<A>[] = []
  #closed = false
  #ended = false
  /** The failure that ended the listener. */
  #error: Error | undefined
  readonly #count: Count = { open: 0 }
  #dropped = 0
  #errors = 0
  #lastError: ZcioError | undefined
  #backoffMs = 0
  #timer: NodeJS.Timeout | undefined

  static {
    isListener = (x): x is TcpListener => typeof x === 'object' && x !== null && #native in x
    bindTo = (ring, a, { backlog, readyLimit, maxConnections, onError, ipv6Only, reusePort }) => {
      const internals = ringInternals(ring)
      const handle = native.TcpListener.bind(internals.native, a.host, a.port, a.path, backlog, ipv6Only, reusePort)
      return new TcpListener(ring, handle, readyLimit, maxConnections, onError)
    }
  }

  private constructor(ring: Ring, handle: NativeListener, readyLimit: number, maxConnections: number, onError: ((err: ZcioError) => void) | undefined) {
    if (!(handle instanceof native.TcpListener)) throw zcioError('ERR_ILLEGAL_CONSTRUCTOR', 'Illegal constructor')
    this.#native = handle
    this.#ring = ring
    this.#completer = ringInternals(ring).completer
    this.#readyLimit = readyLimit
    this.#maxConnections = maxConnections
    this.#onError = onError
  }

  /**
   * Binds and listens (port 0: any free port, see `address`); `host` must be
   * numeric (`listen()` resolves names). Throws `EADDRINUSE`...,
   * `ERR_INVALID_ARG_TYPE` / `ERR_OUT_OF_RANGE` / `ERR_INVALID_ARG_VALUE`
   * for bad options.
   */
  static bind(ring: Ring, options: ListenOptions & UnixAddressOptions): TcpListener<UnixAddress>
  static bind(ring: Ring, options?: ListenOptions & InetAddressOptions): TcpListener<InetAddress>
  static bind(ring: Ring, options?: ListenOptions): TcpListener
  // The implementations' `any`: a listener's address kind is invariant, and
  // which one it is follows from the options, as the overloads say.
  static bind(ring: Ring, options: ListenOptions = {}): TcpListener<any> {
    if (!(ring instanceof Ring)) throw invalidArgType('ring', 'an instance of Ring', ring)
    return bindTo(ring, checkAddress(options, 'options'), checkListenOptions(options))
  }

  /**
   * As `bind()`, but `host` may be a name, resolved first with `dns.lookup`
   * (its first address, as `net.Server.listen` does): resolves to the
   * listener, rejects with `ENOTFOUND`, `EADDRINUSE`... and bad options.
   */
  static listen(ring: Ring, options: ListenOptions & UnixAddressOptions): Promise<TcpListener<UnixAddress>>
  static listen(ring: Ring, options?: ListenOptions & InetAddressOptions): Promise<TcpListener<InetAddress>>
  static listen(ring: Ring, options?: ListenOptions): Promise<TcpListener>
  static async listen(ring: Ring, options: ListenOptions = {}): Promise<TcpListener<any>> {
    if (!(ring instanceof Ring)) throw invalidArgType('ring', 'an instance of Ring', ring)
    const checked = checkAddress(options, 'options', true)
    const limits = checkListenOptions(options)
    return bindTo(ring, await resolveHost(checked), limits)
  }

  get address(): A {
    return self(this).#native.localAddress as A
  }

  /** Connections accepted and waiting for `accept()` (at most `readyLimit`). */
  get readyCount(): number {
    return self(this).#ready.length
  }

  /** Accepted connections not closed yet (those waiting for `accept()` included). */
  get connectionCount(): number {
    return self(this).#count.open
  }

  /** Connections closed at once because `maxConnections` were open. */
  get droppedCount(): number {
    return self(this).#dropped
  }

  /** Accepts that failed without ending the listener (`EMFILE`...). */
  get errorCount(): number {
    return self(this).#errors
  }

  /** The last of those failures, or `undefined`. */
  get lastError(): ZcioError | undefined {
    return self(this).#lastError
  }

  /** Connections open at once at most (`Infinity`: no limit); see `ListenOptions`. */
  get maxConnections(): number {
    return self(this).#maxConnections
  }

  set maxConnections(value: number) {
    self(this).#maxConnections = checkMax(value, 'maxConnections')
  }

  /** Whether `close()` was called (or the ring closed). */
  get closed(): boolean {
    return self(this).#closed || this.#ring.closed
  }

  /**
   * The next connection; `null` once the listener is closed. Rejects only
   * when the listening socket itself failed; a failed accept of one
   * connection (`EMFILE`...) is retried.
   */
  accept(): Promise<TcpStream<A> | null> {
    if (!isListener(this)) return Promise.reject(invalidThis('TcpListener'))
    if (this.#ring.closed) this.#end(true)
    const s = this.#ready.shift()
    if (s) {
      this.#fill()
      return Promise.resolve(s)
    }
    if (this.#ended) return this.#error ? Promise.reject(this.#error) : Promise.resolve(null)
    return new Promise((resolve, reject) => {
      this.#takers.push({ resolve, reject })
      this.#started = true
      this.#fill()
      this.#refTimer()
    })
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<TcpStream<A>> {
    if (!isListener(this)) throw invalidThis('TcpListener')
    for (;;) {
      const s = await this.accept()
      if (s === null) return
      yield s
    }
  }

  /** Stops accepting; connections accepted but not taken are closed, waiting `accept()`s get `null`. */
  close(): void {
    if (!isListener(this)) throw invalidThis('TcpListener')
    if (this.#closed) return
    this.#closed = true
    this.#native.close()
    this.#end(true)
  }

  /** Queues accepts while the ready queue (with the waiting `accept()`s) has room. */
  #fill(): void {
    if (!this.#started || this.#ended || this.#timer !== undefined) return
    while (this.#inFlight < WINDOW && this.#ready.length + this.#inFlight < this.#readyLimit + this.#takers.length) {
      let slot: number
      try {
        slot = this.#native.accept()
      } catch (e) {
        if (this.#ring.closed) this.#end(true)
        else this.#failed(e as ZcioError)
        return
      }
      this.#inFlight++
      this.#completer.listen(slot, this.#onAccept)
    }
  }

  readonly #onAccept = (result: number): void => {
    this.#inFlight--
    if (result >= 0) {
      this.#backoffMs = 0
      this.#adopt(result)
    } else if (this.#ended) {
      return
    } else if (this.#ring.closed) {
      this.#end(true)
      return
    } else if (FATAL.has(result)) {
      this.#error = errnoError(result, 'accept')
      this.#native.close()
      this.#end(false)
      return
    } else {
      // Retried after a delay; ECANCELED without a close (nothing of this
      // package cancels an accept otherwise) is treated the same way.
      this.#failed(errnoError(result, 'accept'))
      return
    }
    this.#fill()
  }

  #adopt(fd: number): void {
    if (this.#ring.closed) {
      // The stream could not be made: the descriptor is still ours to close.
      closeSync(fd)
      this.#end(true)
      return
    }
    let stream: TcpStream<A>
    try {
      // Accepted from this listener: its address kind.
      stream = TcpStream.fromFd(this.#ring, fd) as TcpStream<A>
    } catch {
      // Not taken (not a stream socket): close it.
      closeSync(fd)
      return
    }
    if (this.#closed || this.#count.open >= this.#maxConnections) {
      if (!this.#closed) this.#dropped++
      void stream.close()
      return
    }
    const count = this.#count
    count.open++
    let open = true
    onStreamClose(stream, () => {
      if (!open) return
      open = false
      count.open--
      collected.unregister(stream)
    })
    collected.register(stream, count, stream)
    const t = this.#takers.shift()
    if (t) {
      t.resolve(stream)
      this.#refTimer()
    } else this.#ready.push(stream)
  }

  /** A failed accept: counted, reported, retried after a growing delay. */
  #failed(err: ZcioError): void {
    this.#errors++
    this.#lastError = err
    if (this.#timer === undefined) {
      this.#backoffMs = Math.min(Math.max(this.#backoffMs * 2, BACKOFF_MIN_MS), BACKOFF_MAX_MS)
      this.#timer = setTimeout(() => {
        this.#timer = undefined
        if (this.#ring.closed) this.#end(true)
        else this.#fill()
      }, this.#backoffMs)
      this.#refTimer()
    }
    this.#onError?.(err)
  }

  /** The retry keeps the process alive only while an `accept()` waits for it. */
  #refTimer(): void {
    if (this.#timer === undefined) return
    if (this.#takers.length > 0 && this.#ring.hasRef()) this.#timer.ref()
    else this.#timer.unref()
  }

  /** No more accepts: waiting `accept()`s settle; `closeReady` closes the connections not taken. */
  #end(closeReady: boolean): void {
    if (!this.#ended) {
      this.#ended = true
      clearTimeout(this.#timer)
      this.#timer = undefined
      for (const t of this.#takers.splice(0)) {
        if (this.#error) t.reject(this.#error)
        else t.resolve(null)
      }
    }
    if (closeReady) for (const s of this.#ready.splice(0)) void s.close()
  }
}

/** `l` as a listener, or `ERR_INVALID_ARG_TYPE`. */
function self(l: unknown): TcpListener {
  if (!isListener(l)) throw invalidThis('TcpListener')
  return l
}
