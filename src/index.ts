// zcio: zero-copy I/O for Node.js on Linux (io_uring registered buffers).
// This is the public API; the native binding under it is internal.

import { native, type NativeProbe } from './binding.js'
import { rdma } from './rdma.js'

export { Ring, type RingOptions, type RingFeatures, type Completion } from './ring.js'
export { RegisteredBufferPool, type AcquiredBuffer, type PoolStats } from './pool.js'
export {
  BufferGroup,
  type BufferGroupOptions,
  type BufferGroupStats,
  type Chunk,
  type ChunkCallbacks,
  type RecvOptions,
} from './group.js'
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
  type ZcMessage,
  type StreamOptions,
  type CloseOptions,
  type NodeStream,
  type NodeStreamOptions,
} from './net.js'
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
} from './rdma.js'
export {
  ZeroCopyBufferManager,
  type ZeroCopyBufferManagerOptions,
  type HeaderBuffer,
  type Registration,
  type SendDone,
} from './zcbm.js'
export type { ZcioError } from './errors.js'

/** What the running kernel and process support; see `probe()`. */
export type ProbeResult = NativeProbe & {
  /**
   * RDMA verbs are usable: libibverbs loads and sees a device (checked, and
   * libibverbs loaded, on first read of this property).
   */
  readonly rdma: boolean
  /** Why RDMA is unavailable, or `null` (read lazily, as `rdma`). */
  readonly rdmaReason: string | null
}

/**
 * Reports what this kernel and process support, without throwing: use it to
 * choose a code path or to skip tests.
 */
export function probe(): ProbeResult {
  const p = native.probe()
  let reason: string | null | undefined
  const rdmaReason = (): string | null => (reason === undefined ? (reason = rdma.unavailableReason()) : reason)
  return Object.defineProperties(p, {
    rdma: { get: () => rdmaReason() === null, enumerable: true },
    rdmaReason: { get: rdmaReason, enumerable: true },
  }) as ProbeResult
}
