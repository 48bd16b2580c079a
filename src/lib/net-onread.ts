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

  constructor(options: unknown) {
    const { buffer, callback } = options as Partial<OnReadOptions>
    if (!(buffer instanceof Uint8Array) && typeof buffer !== 'function') {
      throw invalidArgType('options.onread.buffer', 'an instance of Uint8Array or of type function', buffer)
    }
    if (typeof callback !== 'function') throw invalidArgType('options.onread.callback', 'of type function', callback)
    this.#buffer = buffer
    this.#callback = callback
  }

  /** Whether data waits for `resume()`. */
  get holding(): boolean {
    return this.#held !== undefined
  }

  /** Hands `data` to the callback a buffer at a time; keeps what comes after a stop. Returns whether reading may go on. */
  deliver(socket: object, data: Uint8Array): boolean {
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

  #next(): Uint8Array {
    const b = typeof this.#buffer === 'function' ? this.#buffer() : this.#buffer
    if (!(b instanceof Uint8Array)) throw invalidArgType('the onread buffer', 'an instance of Uint8Array', b)
    return b
  }
}
