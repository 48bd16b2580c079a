import cjs from './net.js';
export { Socket, Server, connect, createConnection, createServer, isIP, isIPv4, isIPv6 } from './net.js';
export type { SocketOptions, ServerOptions, ListenOptions } from './net.js';
/** `node:net`'s API over zcio, as `import net from 'node:net'` gives it. */
declare const net: Readonly<{
    Socket: typeof cjs.Socket;
    Server: typeof cjs.Server;
    connect: (...args: unknown[]) => cjs.Socket;
    createConnection: (...args: unknown[]) => cjs.Socket;
    createServer: (options?: cjs.ServerOptions | ((socket: cjs.Socket) => void), connectionListener?: (socket: cjs.Socket) => void) => cjs.Server;
    isIP: typeof import("net").isIP;
    isIPv4: typeof import("net").isIPv4;
    isIPv6: typeof import("net").isIPv6;
}>;
export default net;
