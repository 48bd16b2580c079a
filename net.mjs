// The ES module form of the `zcio/net` entry: the same objects as the
// CommonJS one (one instance of the package, whichever way it is loaded).
import net from './net.js';
export { Socket, Server, connect, createConnection, createServer, isIP, isIPv4, isIPv6 } from './net.js';
export default net;
