// The options of `new net.Socket()` (and of `net.connect()`, with the
// address), and the checks made of them before the socket is made.

import { invalidArgType, invalidArgValue } from './errors.js'
import type { OnReadOptions } from './net-onread.js'
import { validateObject } from './validate.js'

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
  /** Reads go into this buffer and to its callback instead of `'data'` events (net.Socket's `onread`). */
  onread?: OnReadOptions
}

/** Node's checks of a socket's options (object mode is refused: a socket carries bytes). */
export function checkSocketOptions(options: SocketOptions): void {
  validateObject(options as unknown, 'options')
  for (const k of ['objectMode', 'readableObjectMode', 'writableObjectMode'] as const) {
    const v = (options as Record<string, unknown>)[k]
    if (v) throw invalidArgValue(`options.${k}`, v, 'is not supported')
  }
  if (options.allowHalfOpen !== undefined && typeof options.allowHalfOpen !== 'boolean') {
    throw invalidArgType('options.allowHalfOpen', 'of type boolean', options.allowHalfOpen)
  }
}
