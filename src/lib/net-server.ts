// `net.Server` of `zcio.net`: a TcpListener on the default ring (or a given
// one) whose accepted streams become `zcio.net` Sockets, with `node:net`'s
// events, `listen()` forms, `close()` and connection counting.

import { EventEmitter } from 'node:events'
import { lookup } from 'node:dns/promises'
import { chmodSync, statSync } from 'node:fs'
import { isIP } from 'node:net'
import { invalidArgType } from './errors.js'
import { TcpListener } from './listener.js'
import { listenArgs } from './net-args.js'
import { lease } from './net-context.js'
import { alreadyListening, serverNotRunning, systemError } from './net-errors.js'
import type { Lease } from './net-port.js'
import { Socket, kAccepted, kAttach } from './net-socket.js'
import type { Ring } from './ring.js'
import { validateObject, validateSignal } from './validate.js'

/** Options of `net.createServer()`. */
export interface ServerOptions {
  /** Sockets keep their writable side open after the peer's end (default `false`). */
  allowHalfOpen?: boolean
  /** Accepted sockets start paused: no data is read until `resume()` (default `false`). */
  pauseOnConnect?: boolean
  /** `TCP_NODELAY` on accepted sockets; default `true`. */
  noDelay?: boolean
  /** `SO_KEEPALIVE` on accepted sockets (default `false`). */
  keepAlive?: boolean
  /** Milliseconds of silence before the first keep-alive probe. */
  keepAliveInitialDelay?: number
  /** High-water mark of the accepted sockets' readable and writable sides. */
  highWaterMark?: number
  /** The ring to run on (with `group`); default: the thread's default ring. */
  ring?: Ring
  /** The BufferGroup of `ring` the accepted sockets receive through. */
  group?: unknown
}

/** Options of `server.listen(options)`, as `node:net`'s. */
export interface ListenOptions {
  /** A port (0: any free one); with `host`, or alone. */
  port?: number | string
  /** A numeric address or a name (resolved with `dns.lookup`); default `::` (IPv4 too), or `0.0.0.0` where IPv6 is off. */
  host?: string
  /** A Unix socket path, instead of a port. */
  path?: string
  /** The kernel's queue of connections not yet accepted (default 511). */
  backlog?: number
  /** On an IPv6 address, IPv6 connections only (`::` then takes no IPv4 ones). */
  ipv6Only?: boolean
  /** Let other listeners bind the same address and port; the kernel spreads connections among them (`SO_REUSEPORT`). */
  reusePort?: boolean
  /** Accepted for `node:net` compatibility; it means something only under `cluster`, which zcio.net servers are not part of. */
  exclusive?: boolean
  /** A Unix socket file everyone may read. */
  readableAll?: boolean
  /** A Unix socket file everyone may write (connect to). */
  writableAll?: boolean
  /** Aborting it closes the server. */
  signal?: AbortSignal
}

type ConnectionListener = (socket: Socket) => void

/** `readableAll`/`writableAll` of a Unix server: read or write permission for everyone on its socket file, added to what it has. */
function allowAll(path: string, readable: boolean, writable: boolean): void {
  const mode = statSync(path).mode & 0o7777
  chmodSync(path, mode | (readable ? 0o444 : 0) | (writable ? 0o222 : 0))
}

/** A TCP or Unix stream server with `node:net`'s API. */
export class Server extends EventEmitter {
  #options: ServerOptions
  #listener: TcpListener<any> | undefined
  #lease: Lease | undefined
  #starting = false
  #connections = 0
  #path: string | undefined
  #refd = true
  /** Connections at once at most; more are closed as they come (`'drop'`). */
  maxConnections = Infinity

  constructor(options?: ServerOptions | ConnectionListener, connectionListener?: ConnectionListener) {
    super()
    if (typeof options === 'function') {
      connectionListener = options
      options = {}
    }
    options ??= {}
    validateObject(options as unknown, 'options')
    for (const k of ['allowHalfOpen', 'pauseOnConnect', 'noDelay', 'keepAlive'] as const) {
      if (options[k] !== undefined && typeof options[k] !== 'boolean') throw invalidArgType(`options.${k}`, 'of type boolean', options[k])
    }
    this.#options = { ...options }
    // A given ring and group are checked now (ERR_INVALID_ARG_TYPE).
    if (options.ring !== undefined || options.group !== undefined) lease(options.ring, options.group)
    if (connectionListener !== undefined) {
      if (typeof connectionListener !== 'function') throw invalidArgType('connectionListener', 'of type function', connectionListener)
      this.on('connection', connectionListener)
    }
  }

  /**
   * With `captureRejections`, a rejected async `'connection'` listener
   * destroys that socket with the error (as net.Server's); a rejection of
   * any other listener is emitted as `'error'`.
   */
  override [EventEmitter.captureRejectionSymbol](err: Error, event: string | symbol, ...args: unknown[]): void {
    if (event === 'connection') (args[0] as Socket).destroy(err)
    else this.emit('error', err)
  }

  /**
   * Starts listening: `listen([port[, host[, backlog]]][, cb])`,
   * `listen(path[, backlog][, cb])`, `listen(options[, cb])`. Without a
   * host it listens on `::` (IPv4 too), or `0.0.0.0` where IPv6 is off.
   * Emits `'listening'`, or `'error'` (`EADDRINUSE`, `EACCES`...).
   */
  listen(port?: number | string, host?: string, backlog?: number, listeningListener?: () => void): this
  listen(port?: number | string, host?: string, listeningListener?: () => void): this
  listen(port?: number | string, backlog?: number, listeningListener?: () => void): this
  listen(port?: number | string, listeningListener?: () => void): this
  listen(path: string, backlog?: number, listeningListener?: () => void): this
  listen(path: string, listeningListener?: () => void): this
  listen(options: ListenOptions, listeningListener?: () => void): this
  listen(listeningListener?: () => void): this
  listen(...args: unknown[]): this {
    const { options, callback } = listenArgs(args)
    if (this.#listener !== undefined || this.#starting) throw alreadyListening()
    const signal = validateSignal(options.signal, 'options.signal')
    if (callback) this.once('listening', callback)
    const l = lease(this.#options.ring, this.#options.group)
    this.#lease = l
    l.hold(this.#refd)
    this.#starting = true
    if (signal !== undefined) {
      // As net.Server: an abort closes the server (a listen under way is cancelled).
      const onAbort = (): void => {
        this.close()
      }
      if (signal.aborted) {
        // Closed a tick later, as net.Server: never listening.
        process.nextTick(onAbort)
        return this
      }
      signal.addEventListener('abort', onAbort, { once: true })
      this.once('close', () => signal.removeEventListener('abort', onAbort))
    }
    const backlog = typeof options.backlog === 'number' ? options.backlog : 511
    // Truthy values count, as net.Server reads them. `exclusive` only means
    // something under cluster, which zcio.net servers are not part of.
    const flags = { backlog, ipv6Only: Boolean(options.ipv6Only), reusePort: Boolean(options.reusePort) }
    // As net.Server: a path or no host is bound now (address() works at
    // once), a host after its lookup (even a numeric one, as dns.lookup
    // answers a tick later); 'listening' (or 'error') comes a tick later.
    const bindTo = (host: string | undefined): TcpListener<any> => {
      const ring = l.ring as Ring
      if (options.path !== undefined) {
        const listener = TcpListener.bind(ring, { path: options.path, backlog })
        try {
          if (options.readableAll || options.writableAll) allowAll(options.path, Boolean(options.readableAll), Boolean(options.writableAll))
        } catch (e) {
          listener.close()
          throw e
        }
        return listener
      }
      const port = options.port as number
      if (host === undefined) {
        try {
          return TcpListener.bind(ring, { host: '::', port, ...flags })
        } catch (e) {
          const code = (e as { code?: string }).code
          if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') throw systemError(e, 'listen', { address: '::', port })
          return TcpListener.bind(ring, { host: '0.0.0.0', port, ...flags })
        }
      }
      try {
        return TcpListener.bind(ring, { host, port, ...flags })
      } catch (e) {
        throw systemError(e, 'listen', { address: host, port })
      }
    }
    const started = (listener: TcpListener<any>): void => {
      this.#starting = false
      if (this.#lease !== l) {
        // close() came first.
        listener.close()
        return
      }
      this.#listener = listener
      this.#path = options.path
      process.nextTick(() => {
        // Closed in the same tick: no 'listening' (net.Server's).
        if (this.#listener !== listener) return
        this.emit('listening')
        void this.#acceptAll(listener)
      })
    }
    const failed = (err: Error): void => {
      // close() came first: the listen it cancelled is no failure.
      if (this.#lease !== l) return
      this.#starting = false
      this.#lease = undefined
      l.release()
      const where = options.path !== undefined ? { address: options.path } : undefined
      this.emit('error', systemError(err, 'listen', where))
    }
    const host = options.host ?? undefined
    if (options.path !== undefined || host === undefined) {
      let listener: TcpListener<any>
      try {
        listener = bindTo(host)
      } catch (e) {
        process.nextTick(failed, e as Error)
        return this
      }
      started(listener)
    } else {
      ;(isIP(host) !== 0 ? new Promise<{ address: string }>((r) => process.nextTick(r, { address: host })) : lookup(host))
        .then(({ address }) => started(bindTo(address)))
        .catch(failed)
    }
    return this
  }

  async #acceptAll(listener: TcpListener<any>): Promise<void> {
    const o = this.#options
    for (;;) {
      let stream
      try {
        stream = await listener.accept()
      } catch (e) {
        // A failing accept (EMFILE...) is retried by the listener; one that
        // ends it is reported.
        if (this.#listener === listener) this.emit('error', systemError(e, 'accept'))
        return
      }
      if (stream === null) return
      if (this.#connections >= this.maxConnections) {
        const a = stream.localAddress
        const r = stream.remoteAddress
        void stream.close()
        if (a.family !== 'unix' && r.family !== 'unix') {
          this.emit('drop', { localAddress: a.address, localPort: a.port, localFamily: a.family, remoteAddress: r.address, remotePort: r.port, remoteFamily: r.family })
        } else this.emit('drop', {})
        continue
      }
      let socketLease: Lease
      try {
        socketLease = lease(o.ring, o.group)
      } catch (e) {
        void stream.close()
        this.emit('error', e)
        continue
      }
      const socket = new Socket({ allowHalfOpen: o.allowHalfOpen, highWaterMark: o.highWaterMark })
      socket[kAccepted](o.noDelay, o.keepAlive ?? false, o.keepAliveInitialDelay ?? 0)
      socket.server = this
      this.#connections++
      socket.once('close', () => {
        this.#connections--
        this.#closeIfDrained()
      })
      socket[kAttach](stream, socketLease.flow, socketLease, !o.pauseOnConnect)
      if (o.pauseOnConnect) socket.pause()
      this.emit('connection', socket)
    }
  }

  /**
   * Stops accepting; `'close'` follows once every connection has closed.
   * `callback` gets `ERR_SERVER_NOT_RUNNING` when the server was not
   * listening (yet).
   */
  close(callback?: (err?: Error) => void): this {
    // Anything but a function is ignored, as net.Server's close() does.
    if (typeof callback === 'function') {
      // A listen still under way counts as not running, as in net.Server
      // (its handle comes a tick later there).
      if (this.#listener === undefined) this.once('close', () => callback(serverNotRunning()))
      else this.once('close', () => callback())
    }
    const listener = this.#listener
    this.#listener = undefined
    this.#starting = false
    listener?.close()
    this.#lease?.release()
    this.#lease = undefined
    this.#closeIfDrained()
    return this
  }

  #closeIfDrained(): void {
    if (this.#listener !== undefined || this.#starting || this.#connections > 0) return
    process.nextTick(() => this.emit('close'))
  }

  /** `{ address, family, port }`, the path of a Unix server (also once closed), or `null` when not listening. */
  address(): { address: string; family: string; port: number } | string | null {
    const l = this.#listener
    // A Unix server keeps saying its path once closed, as net.Server does.
    if (l === undefined) return this.#path ?? null
    const a = l.address
    if (a.family === 'unix') return this.#path ?? a.path
    return { address: a.address, family: a.family, port: a.port }
  }

  /** Calls back with the number of open connections. */
  getConnections(callback: (err: Error | null, count: number) => void): this {
    if (typeof callback !== 'function') throw invalidArgType('callback', 'of type function', callback)
    const n = this.#connections
    process.nextTick(() => callback(null, n))
    return this
  }

  get listening(): boolean {
    return this.#listener !== undefined
  }

  /** Undoes `unref()`: a listening server keeps the event loop alive again (the default). Returns the server. */
  ref(): this {
    this.#refd = true
    this.#lease?.hold(true)
    return this
  }

  /**
   * Lets the process exit while the server listens, as `net.Server`'s (its
   * connections hold the loop on their own). On a ring given in the
   * options the ring decides (`ring.unref()`). Returns the server.
   */
  unref(): this {
    this.#refd = false
    this.#lease?.hold(false)
    return this
  }

  /** `close()`, awaited (nothing to do when not listening). */
  [Symbol.asyncDispose](): Promise<void> {
    if (this.#listener === undefined && !this.#starting) return Promise.resolve()
    return new Promise((resolve) => this.close(() => resolve()))
  }
}
