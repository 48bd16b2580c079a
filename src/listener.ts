// TcpListener: a listening socket; accepted connections arrive as TcpStreams
// through one multishot accept.

import { closeSync } from 'node:fs'
import { native, type NativeListener } from './binding.js'
import { errnoError, invalidArgType } from './errors.js'
import { F_MORE, Ring, ringInternals } from './ring.js'
import { validateInteger } from './validate.js'
import { type ListenOptions, type SocketAddress, checkAddress } from './address.js'
import { TcpStream } from './stream.js'

const ECANCELED = -125

/** A listening socket; accepted connections arrive as `TcpStream`s (multishot accept). */
export class TcpListener {
  readonly #native: NativeListener
  readonly #ring: Ring
  #armed = false
  #ready: TcpStream[] = []
  #takers: { resolve: (s: TcpStream | null) => void; reject: (e: Error) => void }[] = []
  #ended = false
  #error: Error | undefined

  private constructor(ring: Ring, handle: NativeListener) {
    this.#native = handle
    this.#ring = ring
  }

  /** Binds and listens (port 0: any free port, see `address`). Throws `EADDRINUSE`... */
  static bind(ring: Ring, options: ListenOptions = {}): TcpListener {
    if (!(ring instanceof Ring)) throw invalidArgType('ring', 'an instance of Ring', ring)
    const a = checkAddress(options, 'options')
    const backlog = options.backlog ?? 511
    validateInteger(backlog, 'options.backlog', 0, 2 ** 31 - 1)
    return new TcpListener(ring, native.TcpListener.bind(ringInternals(ring).native, a.host, a.port, a.path, backlog))
  }

  get address(): SocketAddress {
    return this.#native.localAddress
  }

  #arm(): void {
    if (this.#armed || this.#ended) return
    const internals = ringInternals(this.#ring)
    const slot = this.#native.acceptMultishot()
    this.#armed = true
    internals.completer.listen(slot, (result, flags) => {
      if (result >= 0) {
        let stream: TcpStream | undefined
        try {
          stream = TcpStream.fromFd(this.#ring, result)
        } catch {
          // The ring closed under the accept: the new descriptor is ours to close.
          closeSync(result)
        }
        if (stream) {
          const t = this.#takers.shift()
          if (t) t.resolve(stream)
          else this.#ready.push(stream)
        }
      }
      if ((flags & F_MORE) !== 0) return
      this.#armed = false
      if (result < 0 && result !== ECANCELED) this.#error = errnoError(result, 'accept')
      if (result < 0) this.#end()
      else this.#arm()
    })
  }

  #end(): void {
    this.#ended = true
    for (const t of this.#takers.splice(0)) {
      if (this.#error) t.reject(this.#error)
      else t.resolve(null)
    }
  }

  /** The next connection; `null` once the listener is closed. */
  accept(): Promise<TcpStream | null> {
    const s = this.#ready.shift()
    if (s) return Promise.resolve(s)
    if (this.#ended) return this.#error ? Promise.reject(this.#error) : Promise.resolve(null)
    try {
      this.#arm()
    } catch (e) {
      return Promise.reject(e)
    }
    return new Promise((resolve, reject) => this.#takers.push({ resolve, reject }))
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<TcpStream> {
    for (;;) {
      const s = await this.accept()
      if (s === null) return
      yield s
    }
  }

  /** Stops accepting; connections accepted but not taken are closed. */
  close(): void {
    this.#native.close()
    if (!this.#armed) this.#end()
    for (const s of this.#ready.splice(0)) void s.close()
  }
}
