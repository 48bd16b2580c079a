// The sends of one stream, in order. While sends are in flight, new ones
// wait here and go to the kernel as one chain of linked operations when the
// previous chain has been sent. A send settles only when all of its bytes
// went (a short send goes on from where it stopped; sends a broken link
// cancelled go again) or the kernel refused it (its error, with the bytes
// that went before), and only once the kernel no longer uses its memory (a
// zero-copy send: its notification).

import type { NativeStream } from './binding.js'
import { errnoError, zcioError, type ZcioError } from './errors.js'
import { F_MORE, F_NOTIF, type Completer, type Ring, ringInternals } from './ring.js'
import { poolNative } from './pool.js'
import { type SendData, byteLength } from './send-data.js'

const ECANCELED = -125
const EINTR = -4
const EPIPE = -32
const COPIED = 0x80000000 | 0
const MAX_CHAIN = 16
/** Buffers per vectored send (IOV_MAX). */
const MAX_IOV = 1024
/** Bytes per operation: the kernel's limit for one send. */
const MAX_OP_BYTES = 2 ** 31 - 1
/** Attempts of one buffer that the kernel cancelled or interrupted before it gives up. */
const MAX_ATTEMPTS = 64

/** One buffer of a send, from when it is queued until it settles. */
export interface Item {
  readonly data: SendData
  readonly zc: boolean
  /** Its size when it was queued; a view that shrank since was detached. */
  readonly length: number
  /** Bytes that went in earlier attempts. */
  sent: number
  /** Operations over its memory whose final completion has not come. */
  ops: number
  attempts: number
  copied: boolean
  /** Set once all of it went, or it failed. */
  finished: boolean
  error: Error | undefined
  /** Called once, when it has finished and no operation uses its memory. */
  done(bytes: number | Error, copied: boolean): void
}

/** A queued buffer of `data`. */
export function item(data: SendData, zc: boolean, done: Item['done']): Item {
  return {
    data,
    zc,
    length: byteLength(data),
    sent: 0,
    ops: 0,
    attempts: 0,
    copied: false,
    finished: false,
    error: undefined,
    done,
  }
}

/** The error of a failed buffer: the kernel's, with the bytes that went (`bytesWritten`). */
function failure(e: Error, sent: number): Error {
  ;(e as ZcioError & { bytesWritten?: number }).bytesWritten = sent
  return e
}

export class SendQueue {
  readonly #native: NativeStream
  readonly #ring: Ring
  readonly #completer: Completer
  #queue: Item[] = []
  /** Buffers of the chain in flight to go again (short, cancelled), in order. */
  #again: Item[] = []
  /** Operations of the chain in flight whose send result has not come. */
  #sending = 0
  /** Operations whose final completion (notification) has not come. */
  #live = 0
  /** Bytes queued or in flight whose buffers have not finished. */
  #bytes = 0
  /** Whether the stream is closed (nothing goes again). */
  #closed = false
  /** Called when nothing is queued or being sent (for a deferred shutdown). */
  readonly #onSent: () => void
  /** Called when no operation of this queue is live any more. */
  readonly #onIdle: () => void
  /** Called when `bytes` went down. */
  readonly #onBytes: () => void

  constructor(
    native: NativeStream,
    ring: Ring,
    completer: Completer,
    hooks: { onSent(): void; onIdle(): void; onBytes(): void },
  ) {
    this.#native = native
    this.#ring = ring
    this.#completer = completer
    this.#onSent = hooks.onSent
    this.#onIdle = hooks.onIdle
    this.#onBytes = hooks.onBytes
  }

  /** Bytes queued or in flight that have not finished. */
  get bytes(): number {
    return this.#bytes
  }

  /** Operations whose final completion has not come. */
  get live(): number {
    return this.#live
  }

  /** Nothing queued and nothing being sent (notifications may be pending). */
  get sent(): boolean {
    return this.#queue.length === 0 && this.#sending === 0
  }

  /** Queues `items` after everything queued before. */
  push(items: Item[]): void {
    for (const it of items) {
      this.#bytes += it.length
      this.#queue.push(it)
    }
    if (this.#sending === 0) this.#flush()
  }

  /** The stream closed: queued buffers fail with `error`, none goes again. */
  close(error: () => Error): void {
    this.#closed = true
    for (const it of this.#queue.splice(0)) this.#fail(it, error())
  }

  #fail(it: Item, e: Error): void {
    it.error = failure(e, it.sent)
    this.#finish(it)
  }

  #finish(it: Item): void {
    if (it.finished) return
    it.finished = true
    this.#bytes -= it.length
    this.#onBytes()
    this.#settle(it)
  }

  #settle(it: Item): void {
    if (!it.finished || it.ops > 0) return
    it.done(it.error ?? it.sent, it.copied)
  }

  /** Hands the queued sends to the kernel as one chain of linked operations. */
  #flush(): void {
    for (;;) {
      const units = this.#take()
      if (units.length === 0) {
        if (this.#sending === 0) this.#onSent()
        return
      }
      this.#submitChain(units)
      if (this.#sending > 0) return
    }
  }

  /** The next chain: consecutive plain sends of `Uint8Array`s go as one vectored send. */
  #take(): Item[][] {
    const units: Item[][] = []
    let bytes = 0
    while (units.length < MAX_CHAIN && this.#queue.length > 0) {
      const it = this.#queue.shift()!
      if (byteLength(it.data) !== it.length) {
        // Detached (transferred) or its pool closed while it waited here.
        this.#fail(it, zcioError('ERR_ZCIO_DETACHED', "data's memory is gone (its ArrayBuffer was transferred, or its pool closed) before it could be sent"))
        continue
      }
      const last = units[units.length - 1]
      const left = it.length - it.sent
      if (isPlain(it) && last !== undefined && isPlain(last[0]) && last.length < MAX_IOV && bytes + left <= MAX_OP_BYTES) {
        last.push(it)
        bytes += left
      } else {
        units.push([it])
        bytes = left
      }
    }
    return units
  }

  #submitChain(units: Item[][]): void {
    // A chain's entries must reach the kernel together; a single send needs
    // no room kept (a full queue is flushed before it), and skips the call.
    if (units.length > 1) {
      try {
        ringInternals(this.#ring).native.reserve(units.length + 1)
      } catch {
        // A ring too small for the chain: one operation at a time.
        this.#queue.unshift(...units.splice(1).flat())
      }
    }
    for (let k = 0; k < units.length; k++) {
      const unit = units[k]
      const linked = k < units.length - 1
      let slot: number
      try {
        slot = this.#submit(unit, linked)
      } catch (e) {
        // Nothing of this unit reached the kernel. The one before it was
        // queued linked: end the chain there, so that nothing queued next
        // on the ring (another stream's send) waits behind it.
        if (k > 0) this.#endChain()
        for (const it of unit) this.#fail(it, e as Error)
        this.#queue.unshift(...units.slice(k + 1).flat())
        return
      }
      this.#sending++
      this.#live++
      for (const it of unit) {
        it.ops++
        it.attempts++
      }
      this.#completer.listen(slot, (result, flags) => {
        if ((flags & F_NOTIF) === 0) this.#sendResult(unit, result)
        else if ((result & COPIED) !== 0) for (const it of unit) it.copied = true
        if ((flags & F_MORE) !== 0) return
        this.#live--
        for (const it of unit) {
          it.ops--
          this.#settle(it)
        }
        if (this.#live === 0) this.#onIdle()
      })
    }
  }

  #endChain(): void {
    try {
      this.#native.endChain()
    } catch {
      // The ring is closed: nothing more reaches the kernel anyway.
    }
  }

  /** The send result of a unit: what went is counted, the rest goes again or fails. */
  #sendResult(unit: Item[], result: number): void {
    if (result >= 0) {
      let left = result
      for (const it of unit) {
        const got = Math.min(it.length - it.sent, left)
        left -= got
        it.sent += got
        if (it.sent === it.length) this.#finish(it)
        else if (result === 0) this.#fail(it, errnoError(EPIPE, 'send'))
        else this.#again.push(it)
      }
    } else if ((result === ECANCELED || result === EINTR) && !this.#closed && !this.#ring.closed) {
      // Cancelled by a broken link (the send before it stopped short or
      // failed) or interrupted: it did not run, so it goes again.
      for (const it of unit) {
        if (it.attempts < MAX_ATTEMPTS) this.#again.push(it)
        else this.#fail(it, errnoError(result, 'send'))
      }
    } else {
      for (const it of unit) this.#fail(it, errnoError(result, 'send'))
    }
    if (--this.#sending > 0) return
    const again = this.#again.splice(0)
    if (this.#closed) for (const it of again) this.#fail(it, zcioError('ERR_ZCIO_CLOSED', 'the stream is closed'))
    else this.#queue.unshift(...again)
    this.#flush()
  }

  #submit(unit: Item[], linked: boolean): number {
    if (unit.length > 1) return this.#native.sendv(unit.map(rest) as Uint8Array[], linked)
    const it = unit[0]
    const d = it.data
    if (d instanceof Uint8Array) return this.#native.send(rest(it) as Uint8Array, it.zc, linked)
    const offset = (d.offset ?? 0) + it.sent
    const length = it.length - it.sent
    return this.#native.sendPool(poolNative(d.pool), d.index, offset, length, it.zc, linked)
  }
}

function isPlain(it: Item): boolean {
  return !it.zc && it.data instanceof Uint8Array
}

/** What of a `Uint8Array` item is left to send. */
function rest(it: Item): SendData {
  const d = it.data as Uint8Array
  return it.sent === 0 ? d : d.subarray(it.sent)
}
