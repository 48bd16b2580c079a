// The continuous receive of a group (multishot, or one receive at a time on
// Unix sockets) and the order in which receives waiting for a buffer get
// one.
//
// A receive the kernel ended for want of buffers (ENOBUFS) waits here in a
// FIFO. A release re-arms waiting receives in order, one per buffer in the
// kernel's ring: a receive whose socket has data is given a buffer (a token,
// returned at its next completion), one whose socket is idle is armed for
// free (it takes a buffer only when data comes). So a release costs O(1)
// amortized, however many receives wait, and a buffer that comes back is
// never left idle while a receive with data waits.
//
// A receive holding `limit` chunks not yet released pauses: it is not
// re-armed (a multishot one is cancelled), its data waits in its socket, and
// it resumes as soon as a release brings it below the limit. Within BURST of the
// limit it receives one chunk per operation, so a consumer that stops
// reading holds at most `limit` buffers and cannot starve the other streams
// of a shared group.

import type { NativeGroup, NativeStream } from './binding.js'
import { errnoError, zcioError } from './errors.js'
import { F_BUFFER, F_MORE, type Completer, type Ring, ringInternals } from './ring.js'
import { onStreamClose, type TcpStream } from './stream.js'
import type { ChunkBook, ChunkRecord } from './group-chunks.js'

const ENOBUFS = -105
const ECANCELED = -125
/**
 * Chunks a multishot receive may deliver in one go before the layer sees
 * them (the kernel retries a multishot receive up to 32 times in a row).
 */
const BURST = 32

/** What a receive needs of its group. */
export interface GroupCore {
  readonly native: NativeGroup
  readonly completer: Completer
  readonly ring: Ring
  readonly book: ChunkBook
  readonly sched: Scheduler
  /** Called (once) when the group closes. */
  readonly closers: Set<() => void>
  available(): number
  closed(): boolean
}

/** A receive that may wait for a buffer. */
interface Waiter {
  /** Arms it again (a buffer is there, or the group closed: arming then ends it). */
  rearm(): void
  /** Whether its socket has something now (it will take a buffer at once). */
  readable(): boolean
  token: boolean
}

/** Receives waiting for a buffer, in order, and the buffers promised to re-armed ones. */
export class Scheduler {
  readonly #waiting = new Set<Waiter>()
  #tokens = 0
  readonly #available: () => number

  constructor(available: () => number) {
    this.#available = available
  }

  get waiting(): number {
    return this.#waiting.size
  }

  /** Queues `w` and arms what the buffers in the ring allow. */
  park(w: Waiter): void {
    this.#waiting.add(w)
    this.pump()
  }

  /** `w` ended or was stopped while waiting. */
  unpark(w: Waiter): void {
    this.#waiting.delete(w)
    this.settled(w)
  }

  /** `w` had a completion (or ended): the buffer promised to it is free to promise again. */
  settled(w: Waiter): void {
    if (!w.token) return
    w.token = false
    this.#tokens--
    this.pump()
  }

  /** Whether `w` may arm now without passing a receive that waits. */
  free(): boolean {
    return this.#waiting.size === 0 && this.#available() > this.#tokens
  }

  /** Arms waiting receives while the ring has a buffer not promised to one. */
  pump(): void {
    while (this.#waiting.size > 0 && this.#available() > this.#tokens) {
      const w = this.#waiting.values().next().value as Waiter
      this.#waiting.delete(w)
      if (w.readable()) {
        w.token = true
        this.#tokens++
      }
      w.rearm()
    }
  }

}

/** A chunk as a receive hands it on (`record`: undefined for a receive that is not counted). */
export type Deliver = (bufferId: number, offset: number, length: number, record: ChunkRecord | undefined) => void

/** Options of a continuous receive. */
export interface ReceiveOptions {
  /** Chunks held (delivered, not released) at which the receive pauses. */
  limit: number
  /**
   * The receive counts its chunks. False: the caller copies each chunk in
   * `deliver`, and its buffer goes back as `deliver` returns, with no
   * record kept (zcio.net sockets and `toNodeStream`).
   */
  counted: boolean
}

/**
 * Starts a continuous receive of `stream` into the group of `core`. Returns
 * `stop()` (the receive ends soon, `onEnd()` follows) and `pause()`/`resume()`.
 */
export function receive(
  core: GroupCore,
  stream: TcpStream,
  s: NativeStream,
  deliver: Deliver,
  onEnd: (error?: Error) => void,
  options: ReceiveOptions,
): { stop(): void; pause(): void; resume(): void } {
  const ringNative = ringInternals(core.ring).native
  // On Unix stream sockets a multishot receive that drained the data
  // queued with the end of stream does not see the end: the socket signals
  // nothing new (seen on Linux 6.18). There, one receive at a time,
  // re-armed after each completion, so the end of stream always comes.
  let oneShot: boolean
  try {
    oneShot = stream.localAddress.family === 'unix'
  } catch {
    oneShot = false // closed: arming below reports it
  }
  let slot = -1
  /** The receive in flight is a one-shot one. */
  let single = oneShot
  let stopped = false
  let ended = false
  let userPaused = false
  /** Cancelled to pause: its final completion must not re-arm. */
  let pausing = false
  let parked = false
  const holder = {
    held: 0,
    released: () => {
      if (slot < 0 && !parked && !ended && !stopped && !paused()) resume()
    },
  }
  const holderId = core.book.addHolder(holder)
  const paused = (): boolean => userPaused || (options.counted && holder.held >= options.limit)
  const waiter: Waiter = {
    token: false,
    readable: () => {
      try {
        return core.native.readable(s)
      } catch {
        return true // closed: arming fails at once and ends the receive
      }
    },
    rearm: () => {
      parked = false
      arm(true)
    },
  }
  const end = (error?: Error): void => {
    if (ended) return
    ended = true
    if (parked) {
      parked = false
      core.sched.unpark(waiter)
    } else core.sched.settled(waiter)
    offStream()
    closers.delete(onRing)
    core.closers.delete(onGroup)
    core.book.dropHolder(holderId)
    onEnd(error)
  }
  // Not in the kernel (waiting for a buffer, or paused): the stream's or the
  // ring's close ends the receive; in the kernel the close cancels it.
  const onClose = (what: string) => (): void => {
    if (slot < 0) end(zcioError('ERR_ZCIO_CLOSED', `the ${what} was closed`))
  }
  const offStream = onStreamClose(stream, onClose('stream'))
  const closers = ringInternals(core.ring).closers
  const onRing = onClose('ring')
  closers.add(onRing)
  const onGroup = onClose('group')
  core.closers.add(onGroup)

  const arm = (rearm: boolean): void => {
    if (ended) return
    if (stopped) return end()
    if (paused() && !core.closed()) return core.sched.settled(waiter)
    // Near its limit a counted receive takes one chunk per receive: a
    // multishot one may take a whole burst before its cancel lands.
    single = oneShot || (options.counted && options.limit - holder.held <= BURST)
    try {
      slot = single ? core.native.recv(s) : core.native.recvMultishot(s, rearm)
    } catch (e) {
      // ERR_ZCIO_CLOSED when the group, the stream or the ring closed
      // while the receive waited.
      return end(e as Error)
    }
    core.completer.listen(slot, handler)
  }
  /** Arms when no receive waits before it and a buffer is free, else queues. */
  const request = (): void => {
    if (core.sched.free()) arm(true)
    else {
      parked = true
      core.sched.park(waiter)
    }
  }
  const resume = (): void => {
    if (slot >= 0 || parked || ended) return
    request()
  }
  const cancel = (): void => {
    try {
      ringNative.cancelSlot(slot)
    } catch {
      // the ring is closed: the receive ends with it
    }
  }
  const handler = (result: number, flags: number, offset: number): void => {
    if ((flags & F_BUFFER) !== 0) {
      const id = flags >>> 16
      if (result > 0 && options.counted) deliver(id, offset, result, core.book.add(id, holderId))
      else if (result > 0) {
        try {
          deliver(id, offset, result, undefined)
        } finally {
          core.book.releaseRaw(id)
        }
      } else core.book.releaseRaw(id) // an empty chunk
    }
    const more = (flags & F_MORE) !== 0
    if (more && slot >= 0 && !pausing && !stopped && paused()) {
      pausing = true
      cancel()
    }
    if (more) return core.sched.settled(waiter)
    slot = -1
    const wasPausing = pausing
    pausing = false
    core.sched.settled(waiter)
    if (ended) return
    if (result === ECANCELED && wasPausing && !stopped) return arm(true)
    if (result === 0) return end()
    if (stopped) return result > 0 || result === ENOBUFS || result === ECANCELED ? end() : end(errnoError(result, 'recv'))
    if (result > 0 || result === ENOBUFS) {
      // The kernel ended it (no buffer left, or one receive at a time):
      // go on once a buffer is back.
      if (result > 0 && core.sched.free()) return arm(true)
      parked = true
      return core.sched.park(waiter)
    }
    end(errnoError(result, 'recv'))
  }
  if (core.closed() || stream.closed || core.sched.free()) arm(false)
  else {
    parked = true
    core.sched.park(waiter)
  }
  return {
    stop: () => {
      if (stopped || ended) return
      stopped = true
      if (slot >= 0) cancel()
      else end()
    },
    pause: () => {
      userPaused = true
      if (slot >= 0 && !pausing && !single) {
        pausing = true
        cancel()
      }
    },
    resume: () => {
      if (!userPaused) return
      userPaused = false
      if (!paused()) resume()
    },
  }
}
