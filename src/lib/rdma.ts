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
import { invalidArgType, invalidArgValue, outOfRange } from './errors.js'
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
/**
 * wrIds from 2^52 up are reserved for the work requests of
 * `ZeroCopyBufferManager`s (each tags its own), so a caller's wrId never
 * matches one of theirs; posts refuse them (ERR_OUT_OF_RANGE).
 * @internal
 */
export const RESERVED_WR_ID = 2 ** 52

// The native object of each object made here. An object that only claims
// to be one (`Object.create(QueuePair.prototype)`) has none.
const handles = new WeakMap<object, object>()
type Class = abstract new (...args: never[]) => object

/**
 * The native object behind `o`, which must be a `cls` made by zcio; else
 * ERR_INVALID_ARG_TYPE naming `name` (`this` for a method's receiver).
 */
function handle<T extends object>(o: unknown, cls: Class, name = 'this'): T {
  const h = typeof o === 'object' && o !== null ? handles.get(o) : undefined
  if (h === undefined || !(o instanceof cls)) {
    throw invalidArgType(name, o instanceof cls ? `a ${cls.name} made by zcio` : `an instance of ${cls.name}`, o)
  }
  return h as T
}

/** Checks that `h` is the native object a constructor expects. */
function adopt<T extends object>(self: object, h: T, cls: Class): T {
  if (!(h instanceof cls)) throw invalidArgType('handle', `an instance of ${cls.name}`, h)
  handles.set(self, h)
  return h
}

function toSges(list: Sge[], name: string): Native.RdmaSgeRef[] {
  if (!Array.isArray(list)) throw invalidArgType(name, 'an instance of Array', list)
  return list.map((s, i) => {
    validateObject(s, `${name}[${i}]`)
    const mr = handle<Native.RdmaMemoryRegion>(s.mr, MemoryRegion, `${name}[${i}].mr`)
    validateInteger(s.start, `${name}[${i}].start`, 0, MAX_SAFE)
    validateInteger(s.end, `${name}[${i}].end`, 0, MAX_SAFE)
    return { id: mr.id, start: s.start, end: s.end }
  })
}

/** Whether `o` is a MemoryRegion made by zcio (not one that only claims to be). @internal */
export function isMemoryRegion(o: unknown): o is MemoryRegion {
  return o instanceof MemoryRegion && handles.has(o)
}

/** Whether `o` is an RDMA object made by zcio. @internal */
export function isRdmaObject(o: object): boolean {
  return handles.has(o)
}

/** Registered memory: `buffer` is a view of it (no copy). */
export class MemoryRegion {
  /** A `Uint8Array` over the region. */
  readonly buffer: Uint8Array
  /** @internal */
  constructor(h: Native.RdmaMemoryRegion) {
    this.buffer = adopt(this, h, native.RdmaMemoryRegion).buffer()
  }
  get lkey(): number {
    return handle<Native.RdmaMemoryRegion>(this, MemoryRegion).lkey
  }
  get rkey(): number {
    return handle<Native.RdmaMemoryRegion>(this, MemoryRegion).rkey
  }
  /** The start address, for a peer's RDMA READ/WRITE. */
  get addr(): number {
    return handle<Native.RdmaMemoryRegion>(this, MemoryRegion).addr
  }
  get length(): number {
    return handle<Native.RdmaMemoryRegion>(this, MemoryRegion).length
  }
  /** Work requests posted and not completed that use the region. */
  get inUse(): number {
    return handle<Native.RdmaMemoryRegion>(this, MemoryRegion).inUse
  }
  /**
   * Deregisters the region: posts naming it throw `ERR_ZCIO_CLOSED`, a peer's
   * access with its rkey fails; `buffer` stays readable. Throws
   * `ERR_ZCIO_MR_IN_USE` while work requests use it; a no-op when closed.
   */
  close(): void {
    handle<Native.RdmaMemoryRegion>(this, MemoryRegion).close()
  }
}

/** A completion queue: `poll()` now, or `await wait()` on the event loop. */
export class CompletionQueue {
  /** @internal */
  constructor(h: Native.RdmaCompletionQueue) {
    adopt(this, h, native.RdmaCompletionQueue)
  }
  /** Up to `max` completions, possibly none. */
  poll(max = 16): WorkCompletion[] {
    const h = handle<Native.RdmaCompletionQueue>(this, CompletionQueue)
    validateInteger(max, 'max', 1, 4096)
    return h.poll(max)
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
    const h = handle<Native.RdmaCompletionQueue>(this, CompletionQueue)
    if (!(out instanceof Float64Array)) throw invalidArgType('out', 'an instance of Float64Array', out)
    validateInteger(spin, 'spin', 0, 2 ** 31 - 1)
    return h.pollInto(out, spin)
  }
  /**
   * Resolves with up to `max` completions as soon as there is at least one
   * (driven by the completion channel; keeps the process alive while pending).
   * Rejects with `ERR_ZCIO_CLOSED` when the queue is (or gets) closed.
   */
  wait(max = 16): Promise<WorkCompletion[]> {
    try {
      const h = handle<Native.RdmaCompletionQueue>(this, CompletionQueue)
      validateInteger(max, 'max', 1, 4096)
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
    handle<Native.RdmaCompletionQueue>(this, CompletionQueue).close()
  }
  /** The completions the queue holds (at least the entries asked for). */
  get capacity(): number {
    return handle<Native.RdmaCompletionQueue>(this, CompletionQueue).capacity
  }
  /**
   * Completions to come: work requests posted, by every queue pair using
   * the queue, that complete here and were not polled yet. A post that
   * would take it past `capacity` throws `ERR_ZCIO_CQ_FULL` (the device
   * would drop the completion); batch posts post the first ones that fit.
   */
  get pending(): number {
    return handle<Native.RdmaCompletionQueue>(this, CompletionQueue).pending
  }
}

/** A connected queue pair. */
export class QueuePair {
  /** @internal */
  constructor(h: Native.RdmaQueuePair) {
    adopt(this, h, native.RdmaQueuePair)
  }
  /** Posts a signaled SEND of `mr[start..end]`. */
  postSend(mr: MemoryRegion, start: number, end: number, wrId: number): void {
    qpOf(this)
    handle(mr, MemoryRegion, 'mr')
    this.postSendSges([{ mr, start, end }], wrId)
  }
  /**
   * Posts a SEND of several entries, with immediate data if given. wrIds
   * are 0 to 2^52 - 1 (from 2^52 up they are reserved for
   * `ZeroCopyBufferManager`). Throws `ERR_ZCIO_CQ_FULL` when the send
   * completion queue has no room for the completion (`cq.pending` reached
   * `cq.capacity`, counting every queue pair that shares it), and `ENOMEM`
   * when the send queue is full; the same holds for every post.
   */
  postSendSges(sges: Sge[], wrId: number, immData?: number): void {
    const h = qpOf(this)
    checkWrId(wrId)
    if (immData !== undefined) validateInteger(immData, 'immData', 0, 2 ** 32 - 1)
    h.postSend(toSges(sges, 'sges'), wrId, immData)
  }
  /**
   * Posts one signaled SEND per `(start, end, wrId)` triple of `batch`, all
   * from `mr`, in one call (one doorbell; on Soft-RoCE one system call for
   * the batch). Returns how many were posted: all, or the first ones when
   * the send queue or its completion queue filled up (the rest hold
   * nothing). Throws as `postSend` when none could be posted; a bad triple
   * posts none.
   */
  postSendBatch(mr: MemoryRegion, batch: Float64Array | number[]): number {
    const h = qpOf(this)
    const [id, b] = batchArgs(mr, batch)
    return h.postSendBatch(id, b)
  }
  /** Posts one receive per `(start, end, wrId)` triple of `batch` into `mr`, as `postSendBatch`. */
  postReceiveBatch(mr: MemoryRegion, batch: Float64Array | number[]): number {
    const h = qpOf(this)
    const [id, b] = batchArgs(mr, batch)
    return h.postReceiveBatch(id, b)
  }
  /** Posts a receive into `mr[start..end]`. */
  postReceive(mr: MemoryRegion, start: number, end: number, wrId: number): void {
    qpOf(this)
    handle(mr, MemoryRegion, 'mr')
    this.postReceiveSges([{ mr, start, end }], wrId)
  }
  postReceiveSges(sges: Sge[], wrId: number): void {
    const h = qpOf(this)
    checkWrId(wrId)
    h.postReceive(toSges(sges, 'sges'), wrId)
  }
  /** Posts an RDMA WRITE into the peer's `remoteAddr` (`rkey`). */
  postWrite(sges: Sge[], remoteAddr: number, rkey: number, wrId: number, immData?: number): void {
    const h = qpOf(this)
    checkWrId(wrId)
    validateInteger(remoteAddr, 'remoteAddr', 0, MAX_SAFE)
    validateInteger(rkey, 'rkey', 0, 2 ** 32 - 1)
    if (immData !== undefined) validateInteger(immData, 'immData', 0, 2 ** 32 - 1)
    h.postWrite(toSges(sges, 'sges'), remoteAddr, rkey, wrId, immData)
  }
  /** Posts an RDMA READ of the peer's `remoteAddr` (`rkey`) into `sges`. */
  postRead(sges: Sge[], remoteAddr: number, rkey: number, wrId: number): void {
    const h = qpOf(this)
    checkWrId(wrId)
    validateInteger(remoteAddr, 'remoteAddr', 0, MAX_SAFE)
    validateInteger(rkey, 'rkey', 0, 2 ** 32 - 1)
    h.postRead(toSges(sges, 'sges'), remoteAddr, rkey, wrId)
  }
  /** Moves the queue pair to the error state: every outstanding request completes as flushed (status 5). */
  setError(): void {
    qpOf(this).setError()
  }
  /**
   * Closes the queue pair: posts throw `ERR_ZCIO_CLOSED` from now on. Work
   * requests still outstanding are flushed (the queue pair moves to the error
   * state): each comes back through its completion queue with status 5 and
   * releases its memory regions as it is polled; the queue pair is destroyed
   * when the last one is polled (at once when nothing is outstanding). A
   * no-op when closed. If the device refuses to destroy it, this throws
   * (its `syscall` is `ibv_destroy_qp`), the memory of its work requests
   * stays held, and calling `close()` again retries.
   */
  close(): void {
    qpOf(this).close()
  }
  /** Work requests posted and not polled yet (after `close()`: those still to be polled as flushed). */
  get outstanding(): number {
    return qpOf(this).outstanding
  }
  /** Whether `close()` ran. */
  get closed(): boolean {
    return qpOf(this).closed
  }
  get qpn(): number {
    return qpOf(this).qpn
  }
}

function qpOf(qp: unknown, name = 'this'): Native.RdmaQueuePair {
  return handle<Native.RdmaQueuePair>(qp, QueuePair, name)
}

/**
 * Posts a SEND with a wrId of the reserved range (from `RESERVED_WR_ID`),
 * for `ZeroCopyBufferManager` (whose completions no caller's wrId can
 * match); returns the queue pair's number.
 * @internal
 */
export function postReservedSend(qp: QueuePair, sges: Sge[], wrId: number): number {
  const h = qpOf(qp, 'connection')
  if (!Number.isSafeInteger(wrId) || wrId < RESERVED_WR_ID) throw outOfRange('wrId', `>= ${RESERVED_WR_ID} && <= ${MAX_SAFE}`, wrId)
  h.postSend(toSges(sges, 'sges'), wrId, undefined)
  return h.qpn
}

function batchArgs(mr: MemoryRegion, batch: Float64Array | number[]): [number, Float64Array] {
  const h = handle<Native.RdmaMemoryRegion>(mr, MemoryRegion, 'mr')
  let b: Float64Array
  if (batch instanceof Float64Array) b = batch
  else if (Array.isArray(batch)) b = Float64Array.from(batch)
  else throw invalidArgType('batch', 'an instance of Float64Array or Array', batch)
  if (b.length % 3 !== 0) throw invalidArgValue('batch', `(${b.length} numbers)`, 'must hold (start, end, wrId) triples')
  // Types and integers are checked natively; the reserved range here.
  for (let i = 2; i < b.length; i += 3) if (b[i] >= RESERVED_WR_ID) checkWrId(b[i], `batch[${i}]`)
  return [h.id, b]
}

function checkWrId(wrId: number, name = 'wrId'): void {
  validateInteger(wrId, name, 0, MAX_SAFE)
  if (wrId >= RESERVED_WR_ID) {
    throw outOfRange(name, `>= 0 && <= 2^52 - 1 (from 2^52 up wrIds are reserved for ZeroCopyBufferManager)`, wrId)
  }
}

/** A queue pair in INIT: send `endpoint()` to the peer, then `handshake(theirs)`. */
export class PreparedQueuePair {
  readonly #endpoint: Endpoint
  /** @internal */
  constructor(h: Native.RdmaPreparedQueuePair) {
    this.#endpoint = adopt(this, h, native.RdmaPreparedQueuePair).endpoint()
  }
  /** What the peer needs (still readable after `handshake`). */
  endpoint(): Endpoint {
    handle(this, PreparedQueuePair)
    return { ...this.#endpoint }
  }
  /** Destroys the queue pair (a no-op once handshaken: close the `QueuePair` instead). */
  close(): void {
    handle<Native.RdmaPreparedQueuePair>(this, PreparedQueuePair).close()
  }
  /** INIT → RTR → RTS; usable once (`ERR_ZCIO_CLOSED` afterwards or after `close()`). */
  handshake(remote: Endpoint): QueuePair {
    const h = handle<Native.RdmaPreparedQueuePair>(this, PreparedQueuePair)
    validateObject(remote, 'remote')
    validateInteger(remote.lid, 'remote.lid', 0, 65535)
    validateInteger(remote.qpn, 'remote.qpn', 0, 2 ** 24 - 1)
    validateInteger(remote.psn, 'remote.psn', 0, 2 ** 24 - 1)
    if (typeof remote.gid !== 'string' || !/^[0-9a-f]{32}$/i.test(remote.gid)) {
      throw invalidArgValue('remote.gid', remote.gid, 'must be 32 hex digits')
    }
    return new QueuePair(h.handshake(remote))
  }
}

/** A protection domain. */
export class ProtectionDomain {
  /** @internal */
  constructor(h: Native.RdmaProtectionDomain) {
    adopt(this, h, native.RdmaProtectionDomain)
  }
  /** Allocates and registers `size` bytes (page-aligned; local write, remote read and write). */
  allocate(size: number): MemoryRegion {
    const h = handle<Native.RdmaProtectionDomain>(this, ProtectionDomain)
    validateInteger(size, 'size', 1, MAX_SAFE)
    return new MemoryRegion(h.allocate(size))
  }
  /** A reliable-connected queue pair on `sendCq` / `recvCq`. */
  createQp(sendCq: CompletionQueue, recvCq: CompletionQueue, options: QpOptions = {}): PreparedQueuePair {
    const h = handle<Native.RdmaProtectionDomain>(this, ProtectionDomain)
    const send = handle<Native.RdmaCompletionQueue>(sendCq, CompletionQueue, 'sendCq')
    const recv = handle<Native.RdmaCompletionQueue>(recvCq, CompletionQueue, 'recvCq')
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
      h.createQp(
        send,
        recv,
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
    handle<Native.RdmaProtectionDomain>(this, ProtectionDomain).close()
  }
}

/** An open RDMA device. */
export class Context {
  /** @internal */
  constructor(h: Native.RdmaContext) {
    adopt(this, h, native.RdmaContext)
  }
  allocPd(): ProtectionDomain {
    return new ProtectionDomain(handle<Native.RdmaContext>(this, Context).allocPd())
  }
  createCq(entries: number): CompletionQueue {
    const h = handle<Native.RdmaContext>(this, Context)
    validateInteger(entries, 'entries', 1, 2 ** 31 - 1)
    return new CompletionQueue(h.createCq(entries))
  }
  /**
   * Closes the device. Throws `ERR_ZCIO_CONTEXT_IN_USE` while protection
   * domains or completion queues of it are open. A no-op when closed.
   */
  close(): void {
    handle<Native.RdmaContext>(this, Context).close()
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
