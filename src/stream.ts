// TcpStream: a connected stream socket (TCP over IPv4/IPv6, Unix) driven by
// the ring. Sends of one stream are kept in order: while sends are in
// flight, new ones wait here and go to the kernel as one chain of linked
// operations when the previous chain has been sent. A zero-copy send settles
// only when its notification says the memory is free again.

import type { Duplex } from 'node:stream'
import { native, type NativeStream } from './binding.js'
import { errnoError, invalidArgType, invalidArgValue, zcioError } from './errors.js'
import { F_MORE, F_NOTIF, type Completer, Ring, ringInternals } from './ring.js'
import { poolNative } from './pool.js'
import { validateFd } from './validate.js'
import { type AddressOptions, type SocketAddress, checkAddress } from './address.js'
import { type PoolSlice, type SendData, type SendZcResult, byteLength, checkData, lend, poolSize, unlend } from './send-data.js'
import { toNodeStream } from './node-stream.js'
import type { BufferGroup } from './group.js'

const ECANCELED = -125
const EPIPE = 32
const COPIED = 0x80000000 | 0
const MAX_CHAIN = 16
/** Buffers per vectored send (IOV_MAX). */
const MAX_IOV = 1024

let nativeOfStream: (s: TcpStream) => NativeStream
/** `probe().sendZc`, read once. */
let zcSupport: boolean | undefined

let closersOf: (s: TcpStream) => Set<() => void>

/** Runs `f` once `stream` is closed (for this package's classes only); returns the undo. */
export function onStreamClose(stream: TcpStream, f: () => void): () => void {
  const set = closersOf(stream)
  set.add(f)
  return () => set.delete(f)
}

/** The binding object of `stream` (for this package's classes only). */
export function streamNative(stream: TcpStream): NativeStream {
  if (!(stream instanceof TcpStream)) throw invalidArgType('stream', 'an instance of TcpStream', stream)
  return nativeOfStream(stream)
}

/** One buffer of a send, queued until its chain goes to the kernel. */
interface Item {
  data: SendData
  zc: boolean
  /** Called once with the byte count (or error) and whether the kernel copied. */
  done(bytes: number | Error, copied: boolean): void
}

/** A connected stream socket whose sends and receives go through the ring. */
export class TcpStream {
  readonly #native: NativeStream
  readonly #ring: Ring
  readonly #completer: Completer
  #queue: Item[] = []
  /** Sends handed to the kernel whose send result has not come. */
  #sending = 0
  /** Operations whose final completion (notification) has not come. */
  #live = 0
  #idle: (() => void)[] = []
  #closed = false
  #shutRead = false
  /** Set by `shutdown()`: sends from then on fail with `EPIPE`. */
  #shutWrite = false
  /** A write shutdown waiting for earlier sends to end. */
  #shutPending = false
  /** `write` calls so far, and how many of them have ended. */
  #writes = 0
  #writesDone = 0
  #writeError: Error | undefined
  #flushers: { upTo: number; resolve: () => void; reject: (e: Error) => void }[] = []
  /** Called once the stream is closed (receives waiting for a buffer end). */
  readonly #closers = new Set<() => void>()
  readonly #writeDone = (bytes: number | Error): void => {
    this.#writesDone++
    if (bytes instanceof Error) this.#writeError ??= bytes
    if (this.#flushers.length > 0) this.#wakeFlushers()
  }

  static {
    nativeOfStream = (s) => s.#native
    closersOf = (s) => s.#closers
  }

  /** @internal Use `connect`, `fromFd` or a listener. */
  constructor(ring: Ring, handle: NativeStream) {
    if (!(handle instanceof native.TcpStream)) throw zcioError('ERR_ILLEGAL_CONSTRUCTOR', 'Illegal constructor')
    this.#native = handle
    this.#ring = ring
    this.#completer = ringInternals(ring).completer
  }

  /** Connects to `host:port` (or a Unix `path`); rejects with `ECONNREFUSED`... */
  static connect(ring: Ring, options: AddressOptions): Promise<TcpStream> {
    try {
      if (!(ring instanceof Ring)) throw invalidArgType('ring', 'an instance of Ring', ring)
      const a = checkAddress(options, 'options')
      const internals = ringInternals(ring)
      const [handle, slot] = native.TcpStream.connect(internals.native, a.host, a.port, a.path)
      const stream = new TcpStream(ring, handle)
      return new Promise((resolve, reject) => {
        internals.completer.listen(slot, (result) => {
          if (result < 0) {
            handle.close()
            reject(errnoError(result, 'connect'))
          } else resolve(stream)
        })
      })
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /** Adopts a connected stream socket; the stream owns (and closes) it from now on. */
  static fromFd(ring: Ring, fd: number): TcpStream {
    if (!(ring instanceof Ring)) throw invalidArgType('ring', 'an instance of Ring', ring)
    validateFd(fd)
    return new TcpStream(ring, native.TcpStream.fromFd(ringInternals(ring).native, fd))
  }

  get localAddress(): SocketAddress {
    return this.#native.localAddress
  }

  get remoteAddress(): SocketAddress {
    return this.#native.remoteAddress
  }

  /** The descriptor (owned by the stream). */
  get fd(): number {
    return this.#native.fd
  }

  get closed(): boolean {
    return this.#closed
  }

  /** Turns Nagle's algorithm off (default) or on. */
  setNoDelay(noDelay = true): this {
    if (typeof noDelay !== 'boolean') throw invalidArgType('noDelay', 'of type boolean', noDelay)
    this.#native.setNoDelay(noDelay)
    return this
  }

  /**
   * Shuts sending (default), receiving or both down: the peer sees end of
   * stream after every byte of the sends made before this call, as Node's
   * `end()`. While earlier sends are still queued or in the kernel, the
   * write side is shut once they have ended; sends made after this call fail
   * with `EPIPE`, and an error of the deferred shutdown is reported by
   * `flush()`. Shutting a side down again is a no-op.
   */
  shutdown(how: 'read' | 'write' | 'both' = 'write'): void {
    const code = ({ read: 0, write: 1, both: 2 } as const)[how]
    if (code === undefined) throw invalidArgValue('how', how, "must be 'read', 'write' or 'both'")
    if (this.#closed || this.#ring.closed) throw zcioError('ERR_ZCIO_CLOSED', 'the stream is closed')
    const read = code !== 1 && !this.#shutRead
    const write = code !== 0 && !this.#shutWrite
    if (read) {
      try {
        this.#native.shutdown(0)
      } catch (e) {
        // Once both sides have sent their FIN the socket is no longer
        // connected: there is nothing left to shut.
        if (!(this.#shutWrite && (e as { code?: string }).code === 'ENOTCONN')) throw e
      }
      this.#shutRead = true
    }
    if (!write) return
    if (this.#queue.length === 0 && this.#sending === 0) this.#native.shutdown(1)
    else this.#shutPending = true
    this.#shutWrite = true
  }

  /** Shuts the write side down once the sends made before `shutdown()` have ended. */
  #shutdownNow(): void {
    this.#shutPending = false
    if (this.#closed) return
    try {
      this.#native.shutdown(1)
    } catch (e) {
      this.#writeError ??= e as Error
      if (this.#flushers.length > 0) this.#wakeFlushers()
    }
  }

  /** Sends all of `data`, after every earlier send of this stream; resolves with the byte count. */
  send(data: SendData): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.#enqueue([data], false, (bytes) => (bytes instanceof Error ? reject(bytes) : resolve(bytes)))
    })
  }

  /**
   * Queues `data` to be sent after every earlier send, without a promise:
   * the fast form for many small messages (consecutive writes go to the
   * kernel as one vectored send). `data` must not change until a later
   * `flush()` resolves. Errors are reported by `flush()`. Returns the number
   * of writes not yet sent, for backpressure.
   */
  write(data: Uint8Array): number {
    if (!(data instanceof Uint8Array)) throw invalidArgType('data', 'an instance of Uint8Array', data)
    if (this.#closed) throw zcioError('ERR_ZCIO_CLOSED', 'the stream is closed')
    this.#writes++
    if (this.#shutWrite) {
      this.#writeDone(errnoError(-EPIPE, 'send'))
      return this.#writes - this.#writesDone
    }
    this.#queue.push({ data, zc: false, done: this.#writeDone })
    if (this.#sending === 0) this.#flush()
    return this.#writes - this.#writesDone
  }

  /**
   * Resolves once every `write` made before it has been sent; rejects with the
   * first error a write met (then cleared).
   */
  flush(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#flushers.push({ upTo: this.#writes, resolve, reject })
      this.#wakeFlushers()
    })
  }

  #wakeFlushers(): void {
    while (this.#flushers.length > 0 && this.#flushers[0].upTo <= this.#writesDone) {
      const f = this.#flushers.shift()!
      const e = this.#writeError
      this.#writeError = undefined
      if (e) f.reject(e)
      else f.resolve()
    }
  }

  /**
   * Zero-copy send of one or several buffers, in order (Linux 6.0): settles
   * when the kernel no longer uses any of the memory (the notification), with
   * whether it copied after all. Pool buffers go as registered buffers and
   * can't be released meanwhile (`ERR_ZCIO_BUFFER_IN_FLIGHT`); a `Uint8Array`
   * must not be changed before the promise settles.
   */
  sendZc(buffers: SendData | SendData[]): Promise<SendZcResult> {
    zcSupport ??= native.probe().sendZc
    if (!zcSupport) {
      return Promise.reject(
        zcioError('ERR_ZCIO_UNSUPPORTED', `zero-copy send (IORING_OP_SEND_ZC) needs Linux 6.0; see probe().sendZc`),
      )
    }
    const list = Array.isArray(buffers) ? buffers : [buffers]
    return new Promise<SendZcResult>((resolve, reject) => {
      const results: (number | Error)[] = []
      let copied = false
      let left = list.length
      this.#enqueue(list, true, (bytes, c, i) => {
        results[i] = bytes
        copied ||= c
        if (--left > 0) return
        const hard = results.find((r): r is Error => r instanceof Error && (r as { errno?: number }).errno !== ECANCELED)
        const sent = results.reduce<number>((n, r) => n + (typeof r === 'number' ? r : 0), 0)
        const unsent = results.flatMap((r, k) => (typeof r === 'number' && r === byteLength(list[k]) ? [] : [k]))
        if (hard && sent === 0) reject(hard)
        else resolve({ bytes: sent, copied, unsent })
      })
    })
  }

  #enqueue(list: SendData[], zc: boolean, done: (bytes: number | Error, copied: boolean, i: number) => void): void {
    if (this.#closed) {
      list.forEach((_, i) => done(zcioError('ERR_ZCIO_CLOSED', 'the stream is closed'), false, i))
      return
    }
    list.forEach((data, i) => checkData(data, i))
    if (this.#shutWrite) {
      list.forEach((_, i) => done(errnoError(-EPIPE, 'send'), false, i))
      return
    }
    // Pool buffers are lent (in flight) from now, not from when their turn
    // in the queue comes: releasing one before the kernel is done with it
    // must fail, whether its send is queued here or already in the kernel.
    const lentHere: PoolSlice[] = []
    try {
      for (const d of list) {
        if (!(d instanceof Uint8Array)) {
          lend(d)
          lentHere.push(d)
        }
      }
    } catch (e) {
      for (const d of lentHere) unlend(d)
      throw e
    }
    list.forEach((data, i) => {
      this.#queue.push({
        data,
        zc,
        done: (b, c) => {
          if (!(data instanceof Uint8Array)) unlend(data)
          done(b, c, i)
        },
      })
    })
    if (this.#sending === 0) this.#flush()
  }

  /** Hands the queued sends to the kernel as one chain of linked operations. */
  #flush(): void {
    // Consecutive plain sends of Uint8Arrays go as one vectored send.
    const units: Item[][] = []
    let taken = 0
    while (units.length < MAX_CHAIN && taken < this.#queue.length) {
      const item = this.#queue[taken++]
      const last = units[units.length - 1]
      if (isPlain(item) && last !== undefined && isPlain(last[0]) && last.length < MAX_IOV) last.push(item)
      else units.push([item])
    }
    if (units.length === 0) {
      if (this.#shutPending) this.#shutdownNow()
      return
    }
    this.#queue.splice(0, taken)
    const ring = ringInternals(this.#ring).native
    try {
      ring.reserve(units.length)
    } catch {
      // A ring too small for the chain: one operation at a time.
      this.#queue.unshift(...units.splice(1).flat())
    }
    for (let k = 0; k < units.length; k++) {
      const unit = units[k]
      const linked = k < units.length - 1
      let slot: number
      try {
        slot = this.#submit(unit, linked)
      } catch (e) {
        // Nothing of this unit reached the kernel; the rest of the chain
        // would not be linked to it: fail them too, in order.
        for (const rest of units.slice(k).flat()) rest.done(e as Error, false)
        if (this.#sending === 0) this.#flush()
        return
      }
      this.#sending++
      this.#live++
      let result0 = 0
      this.#completer.listen(slot, (result, flags) => {
        if ((flags & F_NOTIF) === 0) {
          result0 = result
          if (--this.#sending === 0) this.#flush()
        }
        if ((flags & F_MORE) !== 0) return
        this.#live--
        const copied = (flags & F_NOTIF) !== 0 && (result & COPIED) !== 0
        settleUnit(unit, result0, copied)
        if (this.#live === 0) for (const f of this.#idle.splice(0)) f()
      })
    }
  }

  #submit(unit: Item[], linked: boolean): number {
    if (unit.length > 1) return this.#native.sendv(unit.map((i) => i.data as Uint8Array), linked)
    const item = unit[0]
    const d = item.data
    if (d instanceof Uint8Array) return this.#native.send(d, item.zc, linked)
    const size = poolSize(d.pool)
    const offset = d.offset ?? 0
    const length = d.length ?? size - offset
    return this.#native.sendPool(poolNative(d.pool), d.index, offset, length, item.zc, linked)
  }

  /**
   * Refuses new sends, cancels what is in flight and closes the socket; resolves
   * once every send has ended (zero-copy sends: their notification), so no
   * memory is still in the kernel's hands. Queued sends reject with `ERR_ZCIO_CLOSED`.
   */
  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true
      for (const item of this.#queue.splice(0)) item.done(zcioError('ERR_ZCIO_CLOSED', 'the stream is closed'), false)
      this.#native.close()
      const closers = [...this.#closers]
      this.#closers.clear()
      for (const f of closers) f()
    }
    if (this.#live === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idle.push(resolve))
  }

  /**
   * A `stream.Duplex` over this socket, receiving through `group`. Each chunk
   * is copied once into a `Buffer` (Node streams hand data on to consumers
   * that keep it) and released at once; while the readable side is full,
   * chunks are held instead, so the group runs dry and TCP flow control
   * slows the peer down. Writes go through `send`.
   */
  toNodeStream(group: BufferGroup): Duplex {
    return toNodeStream(this, group)
  }
}

function isPlain(item: Item): boolean {
  return !item.zc && item.data instanceof Uint8Array
}

/** Hands a unit's result to its items, in order: bytes up to each one's length. */
function settleUnit(unit: Item[], result: number, copied: boolean): void {
  if (result < 0) {
    const err = errnoError(result, 'send')
    for (const item of unit) item.done(err, copied)
    return
  }
  if (unit.length === 1) {
    unit[0].done(result, copied)
    return
  }
  let left = result
  for (const item of unit) {
    const want = byteLength(item.data)
    if (left >= want) {
      item.done(want, copied)
      left -= want
    } else {
      // The connection ended part-way (a short send despite MSG_WAITALL).
      item.done(zcioError('ERR_ZCIO_SHORT_SEND', `the connection ended after ${result} bytes of a vectored send`), copied)
      left = 0
    }
  }
}
