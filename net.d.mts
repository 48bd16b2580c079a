import cjs from './net.js';
export { Socket, Server, connect, createConnection, createServer, isIP, isIPv4, isIPv6, Stream, BlockList, SocketAddress, getDefaultAutoSelectFamily, setDefaultAutoSelectFamily, getDefaultAutoSelectFamilyAttemptTimeout, setDefaultAutoSelectFamilyAttemptTimeout, } from './net.js';
export type { SocketOptions, ServerOptions, ListenOptions, ConnectOptions } from './net.js';
/** `node:net`'s API over zcio, as `import net from 'node:net'` gives it. */
declare const net: Readonly<{
    Socket: typeof import("./lib/net-socket.js").Socket;
    Stream: typeof import("./lib/net-socket.js").Socket;
    Server: typeof import("./lib/net-server.js").Server;
    connect: {
        (options: cjs.SocketOptions & cjs.ConnectOptions, connectListener?: () => void): cjs.Socket;
        (port: number | string, host?: string, connectListener?: () => void): cjs.Socket;
        (port: number | string, connectListener?: () => void): cjs.Socket;
        (path: string, connectListener?: () => void): cjs.Socket;
    };
    createConnection: {
        (options: cjs.SocketOptions & cjs.ConnectOptions, connectListener?: () => void): cjs.Socket;
        (port: number | string, host?: string, connectListener?: () => void): cjs.Socket;
        (port: number | string, connectListener?: () => void): cjs.Socket;
        (path: string, connectListener?: () => void): cjs.Socket;
    };
    createServer: (options?: cjs.ServerOptions | ((socket: cjs.Socket) => void), connectionListener?: (socket: cjs.Socket) => void) => cjs.Server;
    isIP: typeof import("net").isIP;
    isIPv4: typeof import("net").isIPv4;
    isIPv6: typeof import("net").isIPv6;
    BlockList: typeof import("net").BlockList;
    SocketAddress: typeof import("net").SocketAddress;
    getDefaultAutoSelectFamily: typeof import("net").getDefaultAutoSelectFamily;
    setDefaultAutoSelectFamily: typeof import("net").setDefaultAutoSelectFamily;
    getDefaultAutoSelectFamilyAttemptTimeout: typeof import("net").getDefaultAutoSelectFamilyAttemptTimeout;
    setDefaultAutoSelectFamilyAttemptTimeout: typeof import("net").setDefaultAutoSelectFamilyAttemptTimeout;
}>;
export default net;
