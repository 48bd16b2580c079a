// `zcio.net`: `node:net`'s API (`createServer`, `connect`, `Socket`,
// `Server`...) over zcio's streams on a default ring per thread, so that
// `http`, `https`, `tls` and code written for `node:net` run on zcio.

import { isIP, isIPv4, isIPv6 } from 'node:net'
import { lease } from './net-context.js'
import { dial } from './net-dial.js'
import { type ListenOptions, Server, type ServerOptions } from './net-server.js'
import type { ConnectOptions, StreamPort } from './net-port.js'
import { Socket, type SocketOptions, installDialer } from './net-socket.js'

installDialer({ lease, dial })

/** A new socket connected as `connect()`'s arguments say (see `Socket.connect`). */
function connect(options: SocketOptions & ConnectOptions, connectListener?: () => void): Socket
function connect(port: number | string, host?: string, connectListener?: () => void): Socket
function connect(port: number | string, connectListener?: () => void): Socket
function connect(path: string, connectListener?: () => void): Socket
function connect(...args: unknown[]): Socket {
  const first = args[0]
  const options: SocketOptions = typeof first === 'object' && first !== null ? (first as SocketOptions) : {}
  const socket = new Socket(options)
  return (socket.connect as (...a: unknown[]) => Socket).apply(socket, args)
}

/** A new server; `connectionListener` is added as a `'connection'` listener. */
function createServer(options?: ServerOptions | ((socket: Socket) => void), connectionListener?: (socket: Socket) => void): Server {
  return new Server(options, connectionListener)
}

/**
 * `node:net`'s API over zcio: `net.createServer`, `net.connect` /
 * `net.createConnection`, `net.Socket`, `net.Server`, and `isIP`,
 * `isIPv4`, `isIPv6` (Node's own).
 */
export const net = Object.freeze({
  Socket,
  Server,
  connect,
  createConnection: connect,
  createServer,
  isIP,
  isIPv4,
  isIPv6,
})

export { Socket, Server, type SocketOptions, type ServerOptions, type ListenOptions, type ConnectOptions }
