// `net.Socket`'s `onread` option: data goes into the caller's buffer (one
// it gives, or one a function it gives returns for each read) and to its
// callback, `(nread, buffer)`, instead of `'data'` events; the callback
// returning `false` stops reading until `resume()`, as `pause()` does.
// A zcio receive hands over a whole chunk, which may be longer than the
// buffer: it goes in buffer-sized pieces, and what comes after a stop is
// kept (copied) until `resume()`.

import { invalidArgType } from './errors.js'

/** The `onread` option of `net.connect()` and `new net.Socket()`. */
export interface OnReadOptions {
  /** The memory reads go to, or a function that returns it for each read. */
  buffer: Uint8Array | (() => Uint8Array)
  /** Called with the bytes read into `buffer` (this: the socket); `false` stops reading until `resume()`. */
  callback(this: unknown, bytesWritten: number, buffer: Uint8Array): boolean | void
}

export class OnRead {
  readonly #buffer: Uint8Array | (() => Uint8Array)
  readonly #callback: OnReadOptions['callback']
  /** What arrived after a stop, for `resume()`. */
  #held: Uint8Array | undefined
  /** The callback returned `false`, or the socket was paused. */
  stopped = false
  /** Nesting of `deliver` (a callback may resume, which delivers what was held). */
  #depth = 0
  /** The buffer of the last read: kept when a buffer function returns something else. */
  #last: Uint8Array | undefined

  constructor(options: unknown) {
    const { buffer, callback } = options as Partial<OnReadOptions>
    if (!(buffer instanceof Uint8Array) && typeof buffer !== 'function') {
      throw invalidArgType('options.onread.buffer', 'an instance of Uint8Array or of type function', buffer)
    }
    if (typeof callback !== 'function') throw invalidArgType('options.onread.callback', 'of type function', callback)
    this.#buffer = buffer
    this.#callback = callback
  }

  /** Inside `deliver` (a callback runs). */
  get delivering(): boolean {
    return this.#depth > 0
  }

  /** A new connection of the socket: nothing stopped, nothing held. */
  reset(): void {
    this.stopped = false
    this.#held = undefined
  }

  /** Whether data waits for `resume()`. */
  get holding(): boolean {
    return this.#held !== undefined
  }

  /** Hands `data` to the callback a buffer at a time; keeps what comes after a stop. Returns whether reading may go on. */
  deliver(socket: object, data: Uint8Array): boolean {
    this.#depth++
    try {
      return this.#deliver(socket, data)
    } finally {
      this.#depth--
    }
  }

  #deliver(socket: object, data: Uint8Array): boolean {
    let off = 0
    while (off < data.length) {
      const b = this.stopped ? undefined : this.#next()
      const n = b === undefined ? 0 : Math.min(b.length, data.length - off)
      if (n === 0) {
        const rest = data.subarray(off)
        const held = this.#held
        this.#held = held === undefined ? rest.slice() : Buffer.concat([held, rest])
        this.stopped = true
        return false
      }
      b!.set(data.subarray(off, off + n))
      off += n
      if (this.#callback.call(socket, n, b!) === false) this.stopped = true
    }
    return !this.stopped
  }

  /** Reading may go on: what was kept goes first. Returns whether reading may go on after it. */
  resume(socket: object): boolean {
    this.stopped = false
    const held = this.#held
    this.#held = undefined
    return held === undefined || this.deliver(socket, held)
  }

  /** The end of stream: a read that gets it asks for a buffer too (as Node's reads do). */
  end(): void {
    if (typeof this.#buffer === 'function') this.#buffer()
  }

  /**
   * The buffer for the next read. A function's result that is no Uint8Array
   * leaves the last buffer in use (as Node's reads do); with none yet, it
   * throws `ERR_INVALID_ARG_TYPE`. An empty buffer throws `ENOBUFS`.
   */
  #next(): Uint8Array {
    const got = typeof this.#buffer === 'function' ? this.#buffer() : this.#buffer
    const b = got instanceof Uint8Array ? got : this.#last
    if (b === undefined) throw invalidArgType('the onread buffer', 'an instance of Uint8Array', got)
    if (b.length === 0) throw Object.assign(new Error('read ENOBUFS'), { code: 'ENOBUFS', errno: -105, syscall: 'read' })
    this.#last = b
    return b
  }
}
