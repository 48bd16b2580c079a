// The ES module entry: the same classes as the CommonJS entry (one instance
// of the package, whichever way it is loaded).

export { Ring, RegisteredBufferPool, probe } from './index.js'
export type { RingOptions, RingFeatures, Completion, AcquiredBuffer, PoolStats, ProbeResult, ZcioError } from './index.js'
