// The ES module entry: the same classes as the CommonJS entry (one instance
// of the package, whichever way it is loaded).
export { Ring, RegisteredBufferPool, BufferGroup, TcpStream, TcpListener, sendZcBatch, rdma, ZeroCopyBufferManager, probe, net } from './index.js';
