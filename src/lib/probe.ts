// probe(): what the running kernel and process support, without throwing.

import { native, type NativeProbe } from './binding.js'
import { rdma } from './rdma.js'

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
