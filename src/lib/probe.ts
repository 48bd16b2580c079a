// probe(): what the running kernel and process support, without throwing.

import { native, type NativeProbe } from './binding.js'
import { rdma } from './rdma.js'
import type { BackendKind } from './ring.js'

/**
 * Why io_uring is not used here:
 * - `seccomp`: `io_uring_setup` denied (EPERM) by a seccomp filter, as Docker's
 *   and containerd's default profiles do;
 * - `sysctl`: refused by `kernel.io_uring_disabled` (2, or 1 outside
 *   `kernel.io_uring_group`);
 * - `ENOSYS`: no io_uring in the kernel (or an emulator such as qemu-user);
 * - `opcodes`: io_uring sets up but lacks opcodes zcio needs (gVisor supports
 *   only NOP and READV);
 * - `forced`: io_uring works, but `ZCIO_BACKEND=epoll` forces the epoll
 *   backend (unset it to get io_uring back);
 * - `setup`: `io_uring_setup` failed otherwise.
 */
export type UringUnavailableKind = 'seccomp' | 'sysctl' | 'ENOSYS' | 'opcodes' | 'forced' | 'setup'

/** Why io_uring is unavailable, as `probe().ioUringUnavailable` reports it. */
export interface UringUnavailable {
  /** Which of the known reasons. */
  readonly kind: UringUnavailableKind
  /** What happened and what to change to get io_uring (the same text as `reason`). */
  readonly message: string
}

/** What the running kernel and process support; see `probe()`. */
export type ProbeResult = Omit<NativeProbe, 'ioUringUnavailable' | 'backend'> & {
  /**
   * The backend a `new Ring()` with default options gets in this process
   * now: what `ZCIO_BACKEND` forces (read at each call, as at each
   * `new Ring()`), else `'io_uring'` where `ioUring` is true and `'epoll'`
   * elsewhere. The API is the same on both; on epoll `sqpoll` throws
   * `ERR_ZCIO_UNSUPPORTED`, and pools need no `RLIMIT_MEMLOCK`
   * (`memlockNeeded`).
   */
  readonly backend: BackendKind
  /**
   * Why io_uring is not used, or absent when it is: unusable here (`ioUring`
   * is false), or `kind: 'forced'` when `ZCIO_BACKEND=epoll` keeps rings on
   * epoll although `ioUring` is true. Its `kind` is stable, its `message`
   * (the same text as `reason`) says what to change to get io_uring.
   */
  readonly ioUringUnavailable?: UringUnavailable
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
