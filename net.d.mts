import net from './net.js';
export { Socket, Server, connect, createConnection, createServer, isIP, isIPv4, isIPv6 } from './net.js';
export type { SocketOptions, ServerOptions } from './net.js';
export default net;
