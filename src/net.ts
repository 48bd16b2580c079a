// The `zcio/net` entry point: `node:net`'s API over zcio (the same as the
// main entry's `net`), for `import net from 'zcio/net'` and
// `require('zcio/net')` in place of `node:net`.

import { net } from './lib/net-api.js'

export { Socket, Server, type SocketOptions, type ServerOptions, type ListenOptions, type ConnectOptions } from './lib/net-api.js'
export const connect = net.connect
export const createConnection = net.createConnection
export const createServer = net.createServer
export const isIP = net.isIP
export const isIPv4 = net.isIPv4
export const isIPv6 = net.isIPv6
export const Stream = net.Stream
export const BlockList = net.BlockList
export const SocketAddress = net.SocketAddress
export const getDefaultAutoSelectFamily = net.getDefaultAutoSelectFamily
export const setDefaultAutoSelectFamily = net.setDefaultAutoSelectFamily
export const getDefaultAutoSelectFamilyAttemptTimeout = net.getDefaultAutoSelectFamilyAttemptTimeout
export const setDefaultAutoSelectFamilyAttemptTimeout = net.setDefaultAutoSelectFamilyAttemptTimeout
export default net
