import { net } from './lib/net-api.js';
export { Socket, Server, type SocketOptions, type ServerOptions, type ListenOptions } from './lib/net-api.js';
export declare const connect: (...args: unknown[]) => import("./lib/net-socket.js").Socket;
export declare const createConnection: (...args: unknown[]) => import("./lib/net-socket.js").Socket;
export declare const createServer: (options?: import("./lib/net-server.js").ServerOptions | ((socket: import("./lib/net-socket.js").Socket) => void), connectionListener?: (socket: import("./lib/net-socket.js").Socket) => void) => import("./lib/net-server.js").Server;
export declare const isIP: typeof import("net").isIP;
export declare const isIPv4: typeof import("net").isIPv4;
export declare const isIPv6: typeof import("net").isIPv6;
export default net;
