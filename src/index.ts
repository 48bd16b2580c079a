// zcio: zero-copy I/O for Node.js on Linux. The package's entry point (the
// root index.js and index.d.ts are compiled from this file): the public API,
// one concept per module under lib/. The native binding under it is internal.

export { Ring, type RingOptions, type RingFeatures, type Completion, type BackendChoice, type BackendKind } from './lib/ring.js'
export { RegisteredBufferPool, type AcquiredBuffer, type PoolStats } from './lib/pool.js'
export {
  BufferGroup,
  type BufferGroupOptions,
  type BufferGroupStats,
  type Chunk,
  type ChunkCallbacks,
  type RecvOptions,
} from './lib/group.js'
export {
  TcpStream,
  TcpListener,
  sendZcBatch,
  type AddressOptions,
  type ListenOptions,
  type PoolSlice,
  type SendData,
  type SendZcResult,
  type SocketAddress,
  type InetAddress,
  type UnixAddress,
  type InetAddressOptions,
  type UnixAddressOptions,
  type ZcMessage,
  type StreamOptions,
  type ConnectOptions,
  type CloseOptions,
  type NodeStream,
  type NodeStreamOptions,
} from './lib/net.js'
export {
  rdma,
  type Context as RdmaContext,
  type ProtectionDomain,
  type MemoryRegion,
  type CompletionQueue,
  type PreparedQueuePair,
  type QueuePair,
  type Endpoint,
  type WorkCompletion,
  type Sge,
  type QpOptions,
  type RdmaDevice,
} from './lib/rdma.js'
export {
  ZeroCopyBufferManager,
  type ZeroCopyBufferManagerOptions,
  type HeaderBuffer,
  type Registration,
  type SendDone,
} from './lib/zcbm.js'
export { net, type Socket as NetSocket, type Server as NetServer, type SocketOptions, type ServerOptions, type ListenOptions as NetListenOptions, type ConnectOptions as NetConnectOptions } from './lib/net-api.js'
export type { ZcioError } from './lib/errors.js'

export { probe, type ProbeResult, type UringUnavailable, type UringUnavailableKind } from './lib/probe.js'
