"use strict";
// The `zcio/net` entry point: `node:net`'s API over zcio (the same as the
// main entry's `net`), for `import net from 'zcio/net'` and
// `require('zcio/net')` in place of `node:net`.
Object.defineProperty(exports, "__esModule", { value: true });
exports.setDefaultAutoSelectFamilyAttemptTimeout = exports.getDefaultAutoSelectFamilyAttemptTimeout = exports.setDefaultAutoSelectFamily = exports.getDefaultAutoSelectFamily = exports.SocketAddress = exports.BlockList = exports.Stream = exports.isIPv6 = exports.isIPv4 = exports.isIP = exports.createServer = exports.createConnection = exports.connect = exports.Server = exports.Socket = void 0;
const net_api_js_1 = require("./lib/net-api.js");
var net_api_js_2 = require("./lib/net-api.js");
Object.defineProperty(exports, "Socket", { enumerable: true, get: function () { return net_api_js_2.Socket; } });
Object.defineProperty(exports, "Server", { enumerable: true, get: function () { return net_api_js_2.Server; } });
exports.connect = net_api_js_1.net.connect;
exports.createConnection = net_api_js_1.net.createConnection;
exports.createServer = net_api_js_1.net.createServer;
exports.isIP = net_api_js_1.net.isIP;
exports.isIPv4 = net_api_js_1.net.isIPv4;
exports.isIPv6 = net_api_js_1.net.isIPv6;
exports.Stream = net_api_js_1.net.Stream;
exports.BlockList = net_api_js_1.net.BlockList;
exports.SocketAddress = net_api_js_1.net.SocketAddress;
exports.getDefaultAutoSelectFamily = net_api_js_1.net.getDefaultAutoSelectFamily;
exports.setDefaultAutoSelectFamily = net_api_js_1.net.setDefaultAutoSelectFamily;
exports.getDefaultAutoSelectFamilyAttemptTimeout = net_api_js_1.net.getDefaultAutoSelectFamilyAttemptTimeout;
exports.setDefaultAutoSelectFamilyAttemptTimeout = net_api_js_1.net.setDefaultAutoSelectFamilyAttemptTimeout;
exports.default = net_api_js_1.net;
