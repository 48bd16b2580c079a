// The ES module entry: the same classes as the CommonJS entry (one instance
// of the package, whichever way it is loaded).

export { Ring, RegisteredBufferPool, BufferGroup, TcpStream, TcpListener, sendZcBatch, probe } from './index.js'
export type {
  RingOptions,
  RingFeatures,
  Completion,
  AcquiredBuffer,
  PoolStats,
  ProbeResult,
  ZcioError,
  BufferGroupOptions,
  BufferGroupStats,
  Chunk,
  ChunkCallbacks,
  AddressOptions,
  ListenOptions,
  PoolSlice,
  SendData,
  SendZcResult,
  SocketAddress,
  ZcMessage,
} from './index.js'
