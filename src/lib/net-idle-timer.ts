// The idle timer of a zcio.net socket (`setTimeout`): `'timeout'` after
// `ms` without data in either direction, refreshed by every read and
// write, started again by activity after it fired, as net.Socket's. It
// never holds the event loop.

import { invalidArgType, outOfRange } from './errors.js'

export class IdleTimer {
  #timer: NodeJS.Timeout | undefined
  /** What `socket.timeout` reads: the last `setTimeout()` value (or assigned). */
  ms: number | undefined

  /** Checks `setTimeout(ms, callback)`'s arguments as Node does; returns `ms` as an integer. */
  static check(ms: unknown, callback: unknown): number {
    if (typeof ms !== 'number') throw invalidArgType('msecs', 'of type number', ms)
    if (!(ms >= 0) || ms > 2 ** 31 - 1) throw outOfRange('msecs', `>= 0 && <= ${2 ** 31 - 1}`, ms)
    if (callback !== undefined && typeof callback !== 'function') throw invalidArgType('callback', 'of type function', callback)
    return Math.floor(ms)
  }

  /** Fires `fire` after `ms` of no `refresh()` (0: off). */
  set(ms: number, fire: () => void): void {
    this.clear()
    this.ms = ms
    if (ms !== 0) this.#timer = setTimeout(fire, ms).unref()
  }

  refresh(): void {
    this.#timer?.refresh()
  }

  /** Stops the timer; `ms` stays what it was (net.Socket's `timeout` outlives a destroy). */
  clear(): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = undefined
  }
}
