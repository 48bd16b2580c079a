// `TcpStream.toNodeStream()`: a `zcio.net` Socket made connected over a
// stream the caller made, receiving through the caller's BufferGroup.

import type { Duplex } from 'node:stream'
import { flowOf } from './group-brand.js'
import { invalidArgType } from './errors.js'
import type { StreamPort } from './net-port.js'
import { Socket, kAttach } from './net-socket.js'
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

export type { StreamPort }

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
  const socket = new Socket({ allowHalfOpen: options.allowHalfOpen, readableHighWaterMark: options.readableHighWaterMark })
  socket[kAttach](stream, flow, undefined, false)
  return socket
}
