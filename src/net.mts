// The ES module form of the `zcio/net` entry: the same objects as the
// CommonJS one (one instance of the package, whichever way it is loaded).

import cjs from './net.js'

export {
  Socket,
  Server,
  connect,
  createConnection,
  createServer,
  isIP,
  isIPv4,
  isIPv6,
  Stream,
  BlockList,
  SocketAddress,
  getDefaultAutoSelectFamily,
  setDefaultAutoSelectFamily,
  getDefaultAutoSelectFamilyAttemptTimeout,
  setDefaultAutoSelectFamilyAttemptTimeout,
} from './net.js'
export type { SocketOptions, ServerOptions, ListenOptions, ConnectOptions } from './net.js'
/** `node:net`'s API over zcio, as `import net from 'node:net'` gives it. */
const net = cjs.default
export default net
