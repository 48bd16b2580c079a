// RDMA verbs: contexts, protection domains, memory regions, completion
// queues and reliable-connected queue pairs. Posting is safe: every work
// request holds the memory regions it names until its completion is polled
// (or flushed), so a region in use can't be closed (ERR_ZCIO_MR_IN_USE).
// libibverbs is loaded on first use; without it, a provider or a device,
// calls throw ERR_ZCIO_RDMA_UNAVAILABLE saying which is missing.
//
// close() releases an object's verbs resource, in verbs' order: queue pairs
// (flushed, then destroyed once drained), then completion queues and memory
// regions, then protection domains, then the context. Out of order it throws
// ERR_ZCIO_CQ_IN_USE, ERR_ZCIO_MR_IN_USE, ERR_ZCIO_PD_IN_USE or
// ERR_ZCIO_CONTEXT_IN_USE and changes nothing; a second close() does
// nothing; any other use of a closed object throws (or rejects with)
// ERR_ZCIO_CLOSED. An object collected without close() is released once
// nothing made from it is left, never while the device may still use it.

import { native } from './binding.js'
import type * as Native from '../binding'
import { invalidArgType, invalidArgValue } from './errors.js'
import { validateInteger, validateObject } from './validate.js'

export type RdmaDevice = Native.RdmaDevice
export type Endpoint = Native.RdmaEndpoint
export type WorkCompletion = Native.RdmaWorkCompletion

/** Bytes `start..end` of a memory region. */
export interface Sge {
  mr: MemoryRegion
  start: number
  end: number
}

/** Options of `pd.createQp`. */
export interface QpOptions {
  maxSendWr?: number
  maxRecvWr?: number
  /** Scatter/gather entries per work request (default 2). */
  maxSge?: number
  /** GID table index (RoCE); default: the first routable GID on Ethernet links. */
  gidIndex?: number
  /**
   * Path MTU in bytes: 256, 512, 1024 (default, as `ibv_rc_pingpong`), 2048
   * or 4096; at most the port's active MTU, and the same at both ends.
   */
  pathMtu?: number
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER

const handles = new WeakMap<object, object>()
function handle<T extends object>(o: object): T {
  return handles.get(o) as T
}

function toSges(list: Sge[], name: string): Native.RdmaSgeRef[] {
  if (!Array.isArray(list)) throw invalidArgType(name, 'an instance of Array', list)
  return list.map((s, i) => {
    validateObject(s, `${name}[${i}]`)
    if (!(s.mr instanceof MemoryRegion)) throw invalidArgType(`${name}[${i}].mr`, 'an instance of MemoryRegion', s.mr)
    validateInteger(s.start, `${name}[${i}].start`, 0, MAX_SAFE)
    validateInteger(s.end, `${name}[${i}].end`, 0, MAX_SAFE)
    return { id: handle<Native.RdmaMemoryRegion>(s.mr).id, start: s.start, end: s.end }
  })
}

/** Registered memory: `buffer` is a view of it (no copy). */
export class MemoryRegion {
  /** A `Uint8Array` over the region. */
  readonly buffer: Uint8Array
  /** @internal */
  constructor(h: Native.RdmaMemoryRegion) {
    handles.set(this, h)
    this.buffer = h.buffer()
  }
  get lkey(): number {
    return handle<Native.RdmaMemoryRegion>(this).lkey
  }
  get rkey(): number {
    return handle<Native.RdmaMemoryRegion>(this).rkey
  }
  /** The start address, for a peer's RDMA READ/WRITE. */
  get addr(): number {
    return handle<Native.RdmaMemoryRegion>(this).addr
  }
  get length(): number {
    return handle<Native.RdmaMemoryRegion>(this).length
  }
  /** Work requests posted and not completed that use the region. */
  get inUse(): number {
    return handle<Native.RdmaMemoryRegion>(this).inUse
  }
  /**
   * Deregisters the region: posts naming it throw `ERR_ZCIO_CLOSED`, a peer's
   * access with its rkey fails; `buffer` stays readable. Throws
   * `ERR_ZCIO_MR_IN_USE` while work requests use it; a no-op when closed.
   */
  close(): void {
    handle<Native.RdmaMemoryRegion>(this).close()
  }
}

/** A completion queue: `poll()` now, or `await wait()` on the event loop. */
export class CompletionQueue {
  /** @internal */
  constructor(h: Native.RdmaCompletionQueue) {
    handles.set(this, h)
  }
  /** Up to `max` completions, possibly none. */
  poll(max = 16): WorkCompletion[] {
    validateInteger(max, 'max', 1, 4096)
    return handle<Native.RdmaCompletionQueue>(this).poll(max)
  }
  /**
   * Takes up to `out.length / 6` completions now (at most 4096) into `out`,
   * six numbers each — wrId, status, opcode, byteLen, immData (-1 when
   * none), qpNum — and returns how many: `poll()` without an object per
   * completion, for busy loops. Opcodes are verbs' numbers: 0 send,
   * 1 rdma-write, 2 rdma-read, 128 recv, 129 recv-rdma-with-imm. While none
   * is there it polls again, up to `spin` more times (default 0), before
   * returning 0: a busy wait in native code, without a return to JavaScript
   * per empty poll (the thread does nothing else meanwhile).
   */
  pollInto(out: Float64Array, spin = 0): number {
    if (!(out instanceof Float64Array)) throw invalidArgType('out', 'an instance of Float64Array', out)
    validateInteger(spin, 'spin', 0, 2 ** 31 - 1)
    return handle<Native.RdmaCompletionQueue>(this).pollInto(out, spin)
  }
  /**
   * Resolves with up to `max` completions as soon as there is at least one
   * (driven by the completion channel; keeps the process alive while pending).
   * Rejects with `ERR_ZCIO_CLOSED` when the queue is (or gets) closed.
   */
  wait(max = 16): Promise<WorkCompletion[]> {
    try {
      validateInteger(max, 'max', 1, 4096)
      const h = handle<Native.RdmaCompletionQueue>(this)
      // The promise keeps the queue referenced until it settles.
      return h.wait(max).then((r) => (void this, r))
    } catch (e) {
      return Promise.reject(e)
    }
  }
  /**
   * Destroys the queue; pending `wait()`s reject with `ERR_ZCIO_CLOSED`.
   * Throws `ERR_ZCIO_CQ_IN_USE` while a queue pair uses it: close the queue
   * pairs first, and poll the flushed completions of those that had work
   * outstanding. A no-op when closed.
   */
  close(): void {
    handle<Native.RdmaCompletionQueue>(this).close()
  }
}

/** A connected queue pair. */
export class QueuePair {
  /** @internal */
  constructor(h: Native.RdmaQueuePair) {
    handles.set(this, h)
  }
  #h(): Native.RdmaQueuePair {
    return handle<Native.RdmaQueuePair>(this)
  }
  /** Posts a signaled SEND of `mr[start..end]`. */
  postSend(mr: MemoryRegion, start: number, end: number, wrId: number): void {
    this.postSendSges([{ mr, start, end }], wrId)
  }
  /** Posts a SEND of several entries, with immediate data if given. */
  postSendSges(sges: Sge[], wrId: number, immData?: number): void {
    checkWrId(wrId)
    if (immData !== undefined) validateInteger(immData, 'immData', 0, 2 ** 32 - 1)
    this.#h().postSend(toSges(sges, 'sges'), wrId, immData)
  }
  /**
   * Posts one signaled SEND per `(start, end, wrId)` triple of `batch`, all
   * from `mr`, in one call (one doorbell; on Soft-RoCE one system call for
   * the batch). Returns how many were posted: all, or the first ones when
   * the send queue filled up (the rest hold nothing). Throws as `postSend`
   * when none could be posted; a bad triple posts none.
   */
  postSendBatch(mr: MemoryRegion, batch: Float64Array | number[]): number {
    const [id, b] = batchArgs(mr, batch)
    return this.#h().postSendBatch(id, b)
  }
  /** Posts one receive per `(start, end, wrId)` triple of `batch` into `mr`, as `postSendBatch`. */
  postReceiveBatch(mr: MemoryRegion, batch: Float64Array | number[]): number {
    const [id, b] = batchArgs(mr, batch)
    return this.#h().postReceiveBatch(id, b)
  }
  /** Posts a receive into `mr[start..end]`. */
  postReceive(mr: MemoryRegion, start: number, end: number, wrId: number): void {
    this.postReceiveSges([{ mr, start, end }], wrId)
  }
  postReceiveSges(sges: Sge[], wrId: number): void {
    checkWrId(wrId)
    this.#h().postReceive(toSges(sges, 'sges'), wrId)
  }
  /** Posts an RDMA WRITE into the peer's `remoteAddr` (`rkey`). */
  postWrite(sges: Sge[], remoteAddr: number, rkey: number, wrId: number, immData?: number): void {
    checkWrId(wrId)
    validateInteger(remoteAddr, 'remoteAddr', 0, MAX_SAFE)
    validateInteger(rkey, 'rkey', 0, 2 ** 32 - 1)
    if (immData !== undefined) validateInteger(immData, 'immData', 0, 2 ** 32 - 1)
    this.#h().postWrite(toSges(sges, 'sges'), remoteAddr, rkey, wrId, immData)
  }
  /** Posts an RDMA READ of the peer's `remoteAddr` (`rkey`) into `sges`. */
  postRead(sges: Sge[], remoteAddr: number, rkey: number, wrId: number): void {
    checkWrId(wrId)
    validateInteger(remoteAddr, 'remoteAddr', 0, MAX_SAFE)
    validateInteger(rkey, 'rkey', 0, 2 ** 32 - 1)
    this.#h().postRead(toSges(sges, 'sges'), remoteAddr, rkey, wrId)
  }
  /** Moves the queue pair to the error state: every outstanding request completes as flushed (status 5). */
  setError(): void {
    this.#h().setError()
  }
  /**
   * Closes the queue pair: posts throw `ERR_ZCIO_CLOSED` from now on. Work
   * requests still outstanding are flushed (the queue pair moves to the error
   * state): each comes back through its completion queue with status 5 and
   * releases its memory regions as it is polled; the queue pair is destroyed
   * when the last one is polled (at once when nothing is outstanding). A
   * no-op when closed.
   */
  close(): void {
    this.#h().close()
  }
  /** Work requests posted and not polled yet (after `close()`: those still to be polled as flushed). */
  get outstanding(): number {
    return this.#h().outstanding
  }
  /** Whether `close()` ran. */
  get closed(): boolean {
    return this.#h().closed
  }
  get qpn(): number {
    return this.#h().qpn
  }
}

function batchArgs(mr: MemoryRegion, batch: Float64Array | number[]): [number, Float64Array] {
  if (!(mr instanceof MemoryRegion)) throw invalidArgType('mr', 'an instance of MemoryRegion', mr)
  let b: Float64Array
  if (batch instanceof Float64Array) b = batch
  else if (Array.isArray(batch)) b = Float64Array.from(batch)
  else throw invalidArgType('batch', 'an instance of Float64Array or Array', batch)
  if (b.length % 3 !== 0) throw invalidArgValue('batch', `(${b.length} numbers)`, 'must hold (start, end, wrId) triples')
  return [handle<Native.RdmaMemoryRegion>(mr).id, b]
}

function checkWrId(wrId: number): void {
  validateInteger(wrId, 'wrId', 0, MAX_SAFE)
}

/** A queue pair in INIT: send `endpoint()` to the peer, then `handshake(theirs)`. */
export class PreparedQueuePair {
  readonly #endpoint: Endpoint
  /** @internal */
  constructor(h: Native.RdmaPreparedQueuePair) {
    handles.set(this, h)
    this.#endpoint = h.endpoint()
  }
  /** What the peer needs (still readable after `handshake`). */
  endpoint(): Endpoint {
    return { ...this.#endpoint }
  }
  /** Destroys the queue pair (a no-op once handshaken: close the `QueuePair` instead). */
  close(): void {
    handle<Native.RdmaPreparedQueuePair>(this).close()
  }
  /** INIT → RTR → RTS; usable once (`ERR_ZCIO_CLOSED` afterwards or after `close()`). */
  handshake(remote: Endpoint): QueuePair {
    validateObject(remote, 'remote')
    validateInteger(remote.lid, 'remote.lid', 0, 65535)
    validateInteger(remote.qpn, 'remote.qpn', 0, 2 ** 24 - 1)
    validateInteger(remote.psn, 'remote.psn', 0, 2 ** 24 - 1)
    if (typeof remote.gid !== 'string' || !/^[0-9a-f]{32}$/i.test(remote.gid)) {
      throw invalidArgValue('remote.gid', remote.gid, 'must be 32 hex digits')
    }
    return new QueuePair(handle<Native.RdmaPreparedQueuePair>(this).handshake(remote))
  }
}

/** A protection domain. */
export class ProtectionDomain {
  /** @internal */
  constructor(h: Native.RdmaProtectionDomain) {
    handles.set(this, h)
  }
  /** Allocates and registers `size` bytes (page-aligned; local write, remote read and write). */
  allocate(size: number): MemoryRegion {
    validateInteger(size, 'size', 1, MAX_SAFE)
    return new MemoryRegion(handle<Native.RdmaProtectionDomain>(this).allocate(size))
  }
  /** A reliable-connected queue pair on `sendCq` / `recvCq`. */
  createQp(sendCq: CompletionQueue, recvCq: CompletionQueue, options: QpOptions = {}): PreparedQueuePair {
    if (!(sendCq instanceof CompletionQueue)) throw invalidArgType('sendCq', 'an instance of CompletionQueue', sendCq)
    if (!(recvCq instanceof CompletionQueue)) throw invalidArgType('recvCq', 'an instance of CompletionQueue', recvCq)
    validateObject(options, 'options')
    const { maxSendWr = 64, maxRecvWr = 64, maxSge = 2, gidIndex = -1, pathMtu = 1024 } = options
    validateInteger(maxSendWr, 'options.maxSendWr', 1, 2 ** 31 - 1)
    validateInteger(maxRecvWr, 'options.maxRecvWr', 1, 2 ** 31 - 1)
    validateInteger(maxSge, 'options.maxSge', 1, 64)
    validateInteger(gidIndex, 'options.gidIndex', -1, 255)
    if (typeof pathMtu !== 'number' || ![256, 512, 1024, 2048, 4096].includes(pathMtu)) {
      throw invalidArgValue('options.pathMtu', pathMtu, 'must be 256, 512, 1024, 2048 or 4096')
    }
    return new PreparedQueuePair(
      handle<Native.RdmaProtectionDomain>(this).createQp(
        handle<Native.RdmaCompletionQueue>(sendCq),
        handle<Native.RdmaCompletionQueue>(recvCq),
        maxSendWr,
        maxRecvWr,
        maxSge,
        gidIndex,
        pathMtu,
      ),
    )
  }
  /**
   * Deallocates the domain. Throws `ERR_ZCIO_PD_IN_USE` while memory regions
   * or queue pairs of it are open (a closed queue pair counts until its
   * flushed completions are polled). A no-op when closed.
   */
  close(): void {
    handle<Native.RdmaProtectionDomain>(this).close()
  }
}

/** An open RDMA device. */
export class Context {
  /** @internal */
  constructor(h: Native.RdmaContext) {
    handles.set(this, h)
  }
  allocPd(): ProtectionDomain {
    return new ProtectionDomain(handle<Native.RdmaContext>(this).allocPd())
  }
  createCq(entries: number): CompletionQueue {
    validateInteger(entries, 'entries', 1, 2 ** 31 - 1)
    return new CompletionQueue(handle<Native.RdmaContext>(this).createCq(entries))
  }
  /**
   * Closes the device. Throws `ERR_ZCIO_CONTEXT_IN_USE` while protection
   * domains or completion queues of it are open. A no-op when closed.
   */
  close(): void {
    handle<Native.RdmaContext>(this).close()
  }
}

/** RDMA entry points. */
export const rdma = {
  /** The RDMA devices of this machine. */
  devices(): RdmaDevice[] {
    return native.rdmaDevices()
  },
  /** Opens device `name`, or the first one. */
  open(name?: string): Context {
    if (name !== undefined && typeof name !== 'string') throw invalidArgType('name', 'of type string', name)
    return new Context(native.RdmaContext.open(name))
  },
  /** Why RDMA can't be used here (libibverbs, kernel support or a device missing), or `null`. */
  unavailableReason(): string | null {
    return native.rdmaUnavailableReason() ?? null
  },
}
