import { net } from './lib/net-api.js';
export { Socket, Server, type SocketOptions, type ServerOptions, type ListenOptions, type ConnectOptions } from './lib/net-api.js';
export declare const connect: {
    (options: import("./lib/net-socket-options.js").SocketOptions & import("./lib/net-port.js").ConnectOptions, connectListener?: () => void): import("./lib/net-api.js").Socket;
    (port: number | string, host?: string, connectListener?: () => void): import("./lib/net-api.js").Socket;
    (port: number | string, connectListener?: () => void): import("./lib/net-api.js").Socket;
    (path: string, connectListener?: () => void): import("./lib/net-api.js").Socket;
};
export declare const createConnection: {
    (options: import("./lib/net-socket-options.js").SocketOptions & import("./lib/net-port.js").ConnectOptions, connectListener?: () => void): import("./lib/net-api.js").Socket;
    (port: number | string, host?: string, connectListener?: () => void): import("./lib/net-api.js").Socket;
    (port: number | string, connectListener?: () => void): import("./lib/net-api.js").Socket;
    (path: string, connectListener?: () => void): import("./lib/net-api.js").Socket;
};
export declare const createServer: (options?: import("./lib/net-server.js").ServerOptions | ((socket: import("./lib/net-api.js").Socket) => void), connectionListener?: (socket: import("./lib/net-api.js").Socket) => void) => import("./lib/net-api.js").Server;
export declare const isIP: typeof import("net").isIP;
export declare const isIPv4: typeof import("net").isIPv4;
export declare const isIPv6: typeof import("net").isIPv6;
export declare const Stream: typeof import("./lib/net-socket.js").Socket;
export declare const BlockList: typeof import("net").BlockList;
export declare const SocketAddress: typeof import("net").SocketAddress;
export declare const getDefaultAutoSelectFamily: typeof import("net").getDefaultAutoSelectFamily;
export declare const setDefaultAutoSelectFamily: typeof import("net").setDefaultAutoSelectFamily;
export declare const getDefaultAutoSelectFamilyAttemptTimeout: typeof import("net").getDefaultAutoSelectFamilyAttemptTimeout;
export declare const setDefaultAutoSelectFamilyAttemptTimeout: typeof import("net").setDefaultAutoSelectFamilyAttemptTimeout;
export default net;
