"use strict";
// zcio: zero-copy I/O for Node.js on Linux. The package's entry point (the
// root index.js and index.d.ts are compiled from this file): the public API,
// one concept per module under lib/. The native binding under it is internal.
Object.defineProperty(exports, "__esModule", { value: true });
exports.probe = exports.net = exports.ZeroCopyBufferManager = exports.rdma = exports.sendZcBatch = exports.TcpListener = exports.TcpStream = exports.BufferGroup = exports.RegisteredBufferPool = exports.Ring = void 0;
var ring_js_1 = require("./lib/ring.js");
Object.defineProperty(exports, "Ring", { enumerable: true, get: function () { return ring_js_1.Ring; } });
var pool_js_1 = require("./lib/pool.js");
Object.defineProperty(exports, "RegisteredBufferPool", { enumerable: true, get: function () { return pool_js_1.RegisteredBufferPool; } });
var group_js_1 = require("./lib/group.js");
Object.defineProperty(exports, "BufferGroup", { enumerable: true, get: function () { return group_js_1.BufferGroup; } });
var net_js_1 = require("./lib/net.js");
Object.defineProperty(exports, "TcpStream", { enumerable: true, get: function () { return net_js_1.TcpStream; } });
Object.defineProperty(exports, "TcpListener", { enumerable: true, get: function () { return net_js_1.TcpListener; } });
Object.defineProperty(exports, "sendZcBatch", { enumerable: true, get: function () { return net_js_1.sendZcBatch; } });
var rdma_js_1 = require("./lib/rdma.js");
Object.defineProperty(exports, "rdma", { enumerable: true, get: function () { return rdma_js_1.rdma; } });
var zcbm_js_1 = require("./lib/zcbm.js");
Object.defineProperty(exports, "ZeroCopyBufferManager", { enumerable: true, get: function () { return zcbm_js_1.ZeroCopyBufferManager; } });
var net_api_js_1 = require("./lib/net-api.js");
Object.defineProperty(exports, "net", { enumerable: true, get: function () { return net_api_js_1.net; } });
var probe_js_1 = require("./lib/probe.js");
Object.defineProperty(exports, "probe", { enumerable: true, get: function () { return probe_js_1.probe; } });
