// zcio: zero-copy I/O for Node.js on Linux (io_uring registered buffers).
// This is the public API; the native binding under it is internal.

import { native, type NativeProbe } from './binding.js'

export { Ring, type RingOptions, type RingFeatures, type Completion } from './ring.js'
export { RegisteredBufferPool, type AcquiredBuffer, type PoolStats } from './pool.js'
export {
  BufferGroup,
  type BufferGroupOptions,
  type BufferGroupStats,
  type Chunk,
  type ChunkCallbacks,
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
} from './net.js'
export type { ZcioError } from './errors.js'

/** What the running kernel and process support; see `probe()`. */
export type ProbeResult = NativeProbe

/**
 * Reports what this kernel and process support, without throwing: use it to
 * choose a code path or to skip tests.
 */
export function probe(): ProbeResult {
  return native.probe()
}
