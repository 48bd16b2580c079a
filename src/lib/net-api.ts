// `zcio.net`: `node:net`'s API (`createServer`, `connect`, `Socket`,
// `Server`...) over zcio's streams on a default ring per thread, so that
// `http`, `https`, `tls` and code written for `node:net` run on zcio.

import {
  BlockList,
  SocketAddress,
  getDefaultAutoSelectFamily,
  getDefaultAutoSelectFamilyAttemptTimeout,
  isIP,
  isIPv4,
  isIPv6,
  setDefaultAutoSelectFamily,
  setDefaultAutoSelectFamilyAttemptTimeout,
} from 'node:net'
import { lease } from './net-context.js'
import { dial } from './net-dial.js'
import { callable } from './callable.js'
import { type ListenOptions, Server as ServerClass, type ServerOptions } from './net-server.js'
import type { ConnectOptions, StreamPort } from './net-port.js'
import { Socket as SocketClass, installDialer } from './net-socket.js'
import type { SocketOptions } from './net-socket-options.js'

/** zcio.net's `net.Socket` (callable without `new`, as node:net's). */
const Socket = callable(SocketClass)
type Socket = SocketClass
/** zcio.net's `net.Server` (callable without `new`, as node:net's). */
const Server = callable(ServerClass)
type Server = ServerClass

installDialer({ lease, dial })

/** A new socket connected as `connect()`'s arguments say (see `Socket.connect`). */
function connect(options: SocketOptions & ConnectOptions, connectListener?: () => void): Socket
function connect(port: number | string, host?: string, connectListener?: () => void): Socket
function connect(port: number | string, connectListener?: () => void): Socket
function connect(path: string, connectListener?: () => void): Socket
function connect(...args: unknown[]): Socket {
  const first = args[0]
  const options: SocketOptions = typeof first === 'object' && first !== null ? (first as SocketOptions) : {}
  const socket = new SocketClass(options)
  return (socket.connect as (...a: unknown[]) => Socket).apply(socket, args)
}

/** A new server; `connectionListener` is added as a `'connection'` listener. */
function createServer(options?: ServerOptions | ((socket: Socket) => void), connectionListener?: (socket: Socket) => void): Server {
  return new ServerClass(options, connectionListener)
}

/**
 * `node:net`'s API over zcio: `net.createServer`, `net.connect` /
 * `net.createConnection`, `net.Socket` (also `net.Stream`), `net.Server`,
 * and Node's own `isIP`, `isIPv4`, `isIPv6`, `BlockList`, `SocketAddress`
 * and the family autoselection defaults (`get`/`setDefaultAutoSelectFamily`,
 * `get`/`setDefaultAutoSelectFamilyAttemptTimeout`), which zcio.net's
 * connects follow too.
 */
export const net = Object.freeze({
  Socket,
  Stream: Socket,
  Server,
  connect,
  createConnection: connect,
  createServer,
  isIP,
  isIPv4,
  isIPv6,
  BlockList,
  SocketAddress,
  getDefaultAutoSelectFamily,
  setDefaultAutoSelectFamily,
  getDefaultAutoSelectFamilyAttemptTimeout,
  setDefaultAutoSelectFamilyAttemptTimeout,
})

export { Socket, Server, type SocketOptions, type ServerOptions, type ListenOptions, type ConnectOptions }
