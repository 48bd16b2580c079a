// `zcio.net`: `node:net`'s API (`createServer`, `connect`, `Socket`,
// `Server`...) over zcio's streams on a default ring per thread, so that
// `http`, `https`, `tls` and code written for `node:net` run on zcio.

import { lookup } from 'node:dns/promises'
import { isIP, isIPv4, isIPv6 } from 'node:net'
import { lease } from './net-context.js'
import { systemError } from './net-errors.js'
import { type ListenOptions, Server, type ServerOptions } from './net-server.js'
import { Socket, type SocketOptions, type StreamPort, installDialer } from './net-socket.js'
import type { Ring } from './ring.js'
import { TcpStream } from './stream.js'

/** Connects to each address in turn until one takes the connection (as `net.connect` without happy eyeballs). */
async function dial(ring: object, options: { host?: string; port?: number; path?: string }): Promise<StreamPort> {
  if (options.path !== undefined) {
    try {
      return await TcpStream.connect(ring as Ring, { path: options.path })
    } catch (e) {
      throw systemError(e, 'connect', { address: options.path })
    }
  }
  const host = options.host ?? 'localhost'
  const port = options.port!
  const addresses = isIP(host) !== 0 ? [host] : (await lookup(host, { all: true, order: 'ipv4first' })).map((a) => a.address)
  let last: unknown
  for (const address of addresses) {
    try {
      return await TcpStream.connect(ring as Ring, { host: address, port })
    } catch (e) {
      last = systemError(e, 'connect', { address, port })
    }
  }
  throw last
}

installDialer({ lease, dial })

/** A new socket connected as `connect()`'s arguments say (see `Socket.connect`). */
function connect(...args: unknown[]): Socket {
  const first = args[0]
  const options: SocketOptions = typeof first === 'object' && first !== null ? (first as SocketOptions) : {}
  const socket = new Socket(options)
  return socket.connect(...args)
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

export { Socket, Server, type SocketOptions, type ServerOptions, type ListenOptions }
