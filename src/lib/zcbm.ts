// ZeroCopyBufferManager (seed: netio3's libfabric ZeroCopyBufferManager):
// a registered data region plus a pool of registered header buffers; each
// send is header + a slice of the data region as one message, identified by
// a caller's key. The key comes back when the send completes (or fails: a
// connection closed under it reports every key still pending), together
// with the header buffer. Two domains: RDMA (a protection domain; sends are
// two-SGE SENDs on a QueuePair, completions fed in with `handle(wc)`) and
// io_uring (a Ring; sends are zero-copy sends of two registered buffers on a
// TcpStream).

import { zcioError, invalidArgType, invalidArgValue } from './errors.js'
import { validateInteger, validateObject } from './validate.js'
import { Ring } from './ring.js'
import { RegisteredBufferPool } from './pool.js'
import { TcpStream } from './stream.js'
import {
  MemoryRegion,
  ProtectionDomain,
  QueuePair,
  RESERVED_WR_ID,
  isMemoryRegion,
  isRdmaObject,
  postReservedSend,
  type WorkCompletion,
} from './rdma.js'

/** Options of `new ZeroCopyBufferManager()`: `dataSize` bytes, or an existing RDMA region as `data`. */
export interface ZeroCopyBufferManagerOptions {
  dataSize?: number
  data?: MemoryRegion
  headerSize: number
  headerCount: number
}

/** A header buffer taken by `getHeader`. */
export interface HeaderBuffer {
  bufnum: number
  /** The header's bytes, in registered memory (no copy on send). */
  buffer: Uint8Array
}

/** A registration: RDMA keys and address, or the io_uring pool and buffer index. */
export type Registration =
  | { kind: 'rdma'; lkey: number; rkey: number; addr: number; length: number }
  | { kind: 'io_uring'; pool: RegisteredBufferPool; index: number; length: number }

/** A finished send: its key, and the error when it did not complete. */
export interface SendDone {
  key: number
  error?: Error
}

const MAX_KEY = Number.MAX_SAFE_INTEGER
/**
 * RDMA wrIds of the managers' sends: from RESERVED_WR_ID (which callers'
 * posts refuse), a block of SEQ_SPAN per manager (its tag), a sequence
 * number per send within it. So a manager's wrId never matches another
 * manager's, a caller's, or one of its own earlier sends still pending.
 */
const SEQ_SPAN = 2 ** 24
const TAGS = (Number.MAX_SAFE_INTEGER + 1 - RESERVED_WR_ID) / SEQ_SPAN
let nextTag = 0

export class ZeroCopyBufferManager {
  readonly #headerSize: number
  readonly #headerCount: number
  readonly #free: number[] = []
  #minFree: number
  /** Pending sends: header bufnum → key. */
  readonly #keys = new Map<number, number>()
  /** RDMA sends posted and not completed: wrId → header bufnum and the queue pair's number. */
  readonly #posted = new Map<number, { bufnum: number; qpNum: number }>()
  /** The wrId of each header's pending RDMA send. */
  readonly #wrIdOf = new Map<number, number>()
  /** This manager's block of wrIds (RDMA). */
  readonly #wrBase: number
  #seq = 0
  readonly #done: SendDone[] = []
  readonly #takers: ((r: IteratorResult<SendDone>) => void)[] = []
  readonly #onComplete: ((done: SendDone) => void) | undefined
  // RDMA domain
  readonly #dataMr: MemoryRegion | undefined
  readonly #headerMr: MemoryRegion | undefined
  // io_uring domain
  readonly #dataPool: RegisteredBufferPool | undefined
  readonly #headerPool: RegisteredBufferPool | undefined
  readonly #headerIndex: number[] = []
  readonly #data: Uint8Array
  /** The data region was allocated here (not passed in as `options.data`). */
  readonly #ownsData: boolean = true
  #closed = false

  constructor(options: ZeroCopyBufferManagerOptions, domain: ProtectionDomain | Ring, onComplete?: (done: SendDone) => void) {
    this.#wrBase = RESERVED_WR_ID + (nextTag++ % TAGS) * SEQ_SPAN
    validateObject(options, 'options')
    validateInteger(options.headerSize, 'options.headerSize', 1, 2 ** 30)
    validateInteger(options.headerCount, 'options.headerCount', 1, 16384)
    if (onComplete !== undefined && typeof onComplete !== 'function') throw invalidArgType('onComplete', 'of type function', onComplete)
    this.#onComplete = onComplete
    this.#headerSize = options.headerSize
    this.#headerCount = options.headerCount
    for (let i = options.headerCount - 1; i >= 0; i--) this.#free.push(i)
    this.#minFree = options.headerCount
    if (domain instanceof ProtectionDomain) {
      if (!isRdmaObject(domain)) throw invalidArgType('domain', 'a ProtectionDomain made by zcio', domain)
      if (options.data !== undefined) {
        const data: unknown = options.data
        if (!isMemoryRegion(data)) {
          const expected = data instanceof MemoryRegion ? 'a MemoryRegion made by zcio' : 'an instance of MemoryRegion'
          throw invalidArgType('options.data', expected, data)
        }
        this.#dataMr = data
        this.#ownsData = false
      } else {
        validateInteger(options.dataSize, 'options.dataSize', 1, Number.MAX_SAFE_INTEGER)
        this.#dataMr = domain.allocate(options.dataSize)
      }
      this.#headerMr = domain.allocate(options.headerSize * options.headerCount)
      this.#data = this.#dataMr.buffer
    } else if (domain instanceof Ring) {
      if (options.data !== undefined) throw invalidArgValue('options.data', options.data, 'is for the RDMA domain; use dataSize with a Ring')
      validateInteger(options.dataSize, 'options.dataSize', 1, 2 ** 30)
      this.#dataPool = new RegisteredBufferPool(domain, options.dataSize, 1)
      this.#headerPool = new RegisteredBufferPool(domain, options.headerSize, options.headerCount)
      this.#data = this.#dataPool.acquire().buffer
      for (let i = 0; i < options.headerCount; i++) this.#headerIndex.push(this.#headerPool.acquire().index)
    } else {
      throw invalidArgType('domain', 'an instance of ProtectionDomain or Ring', domain)
    }
  }

  /** The data region, to fill in place. */
  get data(): Uint8Array {
    ZeroCopyBufferManager.#own(this)
    return this.#data
  }

  /** Throws ERR_INVALID_ARG_TYPE unless `m` was made by the constructor. */
  static #own(m: unknown): void {
    if (typeof m !== 'object' || m === null || !(#free in m)) {
      throw invalidArgType('this', m instanceof ZeroCopyBufferManager ? 'a ZeroCopyBufferManager made by its constructor' : 'an instance of ZeroCopyBufferManager', m)
    }
  }

  /** The data region's registration. */
  getMr(): Registration {
    ZeroCopyBufferManager.#own(this)
    if (this.#dataMr) return rdmaReg(this.#dataMr)
    return { kind: 'io_uring', pool: this.#dataPool!, index: 0, length: this.#data.length }
  }

  /** The header buffers' registration (RDMA: one region; io_uring: one pool). */
  getHeaderMr(): Registration {
    ZeroCopyBufferManager.#own(this)
    if (this.#headerMr) return rdmaReg(this.#headerMr)
    return { kind: 'io_uring', pool: this.#headerPool!, index: this.#headerIndex[0], length: this.#headerSize }
  }

  /** Takes a header buffer and copies `headerData` in; throws `ERR_ZCIO_NO_BUFFERS` when none is free. */
  getHeader(headerData: Uint8Array, key: number): HeaderBuffer {
    ZeroCopyBufferManager.#own(this)
    this.#check()
    if (!(headerData instanceof Uint8Array)) throw invalidArgType('headerData', 'an instance of Uint8Array', headerData)
    if (headerData.length > this.#headerSize) {
      throw invalidArgValue('headerData', `(${headerData.length} bytes)`, `must fit the header size (${this.#headerSize})`)
    }
    validateInteger(key, 'key', 0, MAX_KEY)
    const bufnum = this.#free.pop()
    if (bufnum === undefined) throw zcioError('ERR_ZCIO_NO_BUFFERS', `all ${this.#headerCount} header buffers are in use`)
    this.#minFree = Math.min(this.#minFree, this.#free.length)
    const buffer = this.#header(bufnum)
    buffer.set(headerData)
    this.#keys.set(bufnum, key)
    return { bufnum, buffer: buffer.subarray(0, headerData.length) }
  }

  #header(bufnum: number): Uint8Array {
    if (this.#headerMr) return this.#headerMr.buffer.subarray(bufnum * this.#headerSize, (bufnum + 1) * this.#headerSize)
    return this.#headerPool!.get(this.#headerIndex[bufnum])
  }

  /** Gives header buffer `bufnum` back; returns its key. */
  returnHeader(bufnum: number): number {
    ZeroCopyBufferManager.#own(this)
    validateInteger(bufnum, 'bufnum', 0, this.#headerCount - 1)
    const key = this.#keys.get(bufnum)
    if (key === undefined) throw zcioError('ERR_ZCIO_NOT_ACQUIRED', `header buffer ${bufnum} is not in use`)
    this.#keys.delete(bufnum)
    this.#free.push(bufnum)
    return key
  }

  /** The fewest free header buffers since the previous call (then reset to the current number). */
  getNumAvailableBuffers(): number {
    ZeroCopyBufferManager.#own(this)
    const min = this.#minFree
    this.#minFree = this.#free.length
    return min
  }

  /** The keys of sends not yet completed. */
  getPendingSends(): number[] {
    ZeroCopyBufferManager.#own(this)
    return [...this.#keys.values()]
  }

  /**
   * Sends header + `data[dataOffset .. dataOffset + dataLength]` as one
   * message on `connection` (a QueuePair: one two-SGE SEND; a TcpStream: a
   * zero-copy send of both buffers). The key is reported (`completed()`,
   * `onComplete`) when the send completes or fails, and the header goes back.
   */
  send(connection: QueuePair | TcpStream, headerData: Uint8Array, dataOffset: number, dataLength: number, key: number): void {
    ZeroCopyBufferManager.#own(this)
    this.#check()
    validateInteger(dataOffset, 'dataOffset', 0, this.#data.length)
    validateInteger(dataLength, 'dataLength', 0, this.#data.length - dataOffset)
    const { bufnum } = this.getHeader(headerData, key)
    try {
      if (connection instanceof QueuePair && this.#dataMr && this.#headerMr) {
        const at = bufnum * this.#headerSize
        const sges = [{ mr: this.#headerMr, start: at, end: at + headerData.length }]
        if (dataLength > 0) sges.push({ mr: this.#dataMr, start: dataOffset, end: dataOffset + dataLength })
        const wrId = this.#nextWrId()
        const qpNum = postReservedSend(connection, sges, wrId)
        this.#posted.set(wrId, { bufnum, qpNum })
        this.#wrIdOf.set(bufnum, wrId)
      } else if (connection instanceof TcpStream && this.#dataPool && this.#headerPool) {
        connection
          .sendZc([
            { pool: this.#headerPool, index: this.#headerIndex[bufnum], offset: 0, length: headerData.length },
            { pool: this.#dataPool, index: 0, offset: dataOffset, length: dataLength },
          ])
          .then(
            (r) => this.#finish(bufnum, r.unsent.length === 0 ? undefined : zcioError('ERR_ZCIO_SHORT_SEND', `the send stopped after ${r.bytes} bytes`)),
            (e: Error) => this.#finish(bufnum, e),
          )
      } else {
        throw invalidArgType('connection', this.#dataMr ? 'an instance of QueuePair' : 'an instance of TcpStream', connection)
      }
    } catch (e) {
      this.returnHeader(bufnum)
      throw e
    }
  }

  /** The wrId of a new send: this manager's block, the next sequence number not pending. */
  #nextWrId(): number {
    for (;;) {
      const wrId = this.#wrBase + this.#seq
      this.#seq = (this.#seq + 1) % SEQ_SPAN
      if (!this.#posted.has(wrId)) return wrId
    }
  }

  /**
   * Feeds an RDMA work completion (from `cq.poll()` or `cq.wait()`; any
   * completion of the queue can be fed); returns the key when it is the
   * completion of a send this manager posted on that queue pair (matched by
   * `wrId` and `qpNum`) and not handled yet: its header goes back. For any
   * other completion (another manager's, the caller's own work requests,
   * another queue pair's, one already handled) it returns `undefined` and
   * changes nothing. A flushed completion (the queue pair closed or failed)
   * reports its key with an error. Throws ERR_INVALID_ARG_TYPE when `wc` is
   * not a completion (an object with numbers `wrId`, `status`, `qpNum`).
   */
  handle(wc: WorkCompletion): number | undefined {
    ZeroCopyBufferManager.#own(this)
    validateObject(wc, 'wc')
    if (typeof wc.wrId !== 'number') throw invalidArgType('wc.wrId', 'of type number', wc.wrId)
    if (typeof wc.status !== 'number') throw invalidArgType('wc.status', 'of type number', wc.status)
    if (typeof wc.qpNum !== 'number') throw invalidArgType('wc.qpNum', 'of type number', wc.qpNum)
    const sent = this.#posted.get(wc.wrId)
    if (sent === undefined || sent.qpNum !== wc.qpNum) return undefined
    const key = this.#keys.get(sent.bufnum)!
    this.#finish(sent.bufnum, wc.status === 0 ? undefined : zcioError('ERR_ZCIO_SEND_FAILED', `the send completed with status ${wc.status}`))
    return key
  }

  #finish(bufnum: number, error?: Error): void {
    const wrId = this.#wrIdOf.get(bufnum)
    if (wrId !== undefined) {
      this.#posted.delete(wrId)
      this.#wrIdOf.delete(bufnum)
    }
    const key = this.returnHeader(bufnum)
    const done: SendDone = error ? { key, error } : { key }
    this.#onComplete?.(done)
    const taker = this.#takers.shift()
    if (taker) taker({ value: done, done: false })
    else if (!this.#onComplete) this.#done.push(done)
  }

  /**
   * Releases the registrations (the data region only when it was allocated
   * here, not passed as `options.data`; the pools of the io_uring domain).
   * Throws `ERR_ZCIO_SENDS_PENDING` while sends are pending: their memory is
   * the device's or the kernel's until they complete (close the connection
   * to have them reported). Afterwards every call throws `ERR_ZCIO_CLOSED`,
   * and `completed()` ends. Closing twice does nothing.
   */
  close(): void {
    ZeroCopyBufferManager.#own(this)
    if (this.#closed) return
    if (this.#keys.size > 0) {
      throw zcioError('ERR_ZCIO_SENDS_PENDING', `${this.#keys.size} sends are pending; they must complete (or their connection close) first`)
    }
    this.#closed = true
    this.#headerMr?.close()
    if (this.#ownsData) this.#dataMr?.close()
    this.#headerPool?.close()
    this.#dataPool?.close()
    for (const taker of this.#takers.splice(0)) taker({ value: undefined, done: true })
  }

  #check(): void {
    if (this.#closed) throw zcioError('ERR_ZCIO_CLOSED', 'the buffer manager is closed')
  }

  /** Completed sends, as they complete (when no `onComplete` callback was given). */
  completed(): AsyncIterableIterator<SendDone> {
    ZeroCopyBufferManager.#own(this)
    const it: AsyncIterableIterator<SendDone> = {
      next: () => {
        const d = this.#done.shift()
        if (d) return Promise.resolve({ value: d, done: false })
        if (this.#closed) return Promise.resolve({ value: undefined, done: true })
        return new Promise((resolve) => this.#takers.push(resolve))
      },
      [Symbol.asyncIterator]: () => it,
    }
    return it
  }
}

function rdmaReg(mr: MemoryRegion): Registration {
  return { kind: 'rdma', lkey: mr.lkey, rkey: mr.rkey, addr: mr.addr, length: mr.length }
}
