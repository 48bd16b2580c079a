// The write side of a zcio.net socket: Node's Writable hands it chunks
// (`_writev`) and the end (`_final`); they wait for the connection if it
// has not come yet, go to the TcpStream as one send, and are done as soon
// as the stream took them while under its high-water mark (as a write the
// kernel took at once is for net.Socket), else once it drained. One
// `flush()` at a time watches the sends for a failure, which destroys the
// socket.

import type { StreamPort } from './net-port.js'
import { systemError } from './net-errors.js'
import { zcioError } from './errors.js'

type Callback = (error?: Error | null) => void

/** What the write side needs of its socket. */
export interface WriteHost {
  /** The stream, once connected. */
  stream(): StreamPort | undefined
  destroyed(): boolean
  /** Data went: the idle timer starts again. */
  activity(): void
  /** `watching` changed: the socket may hold the loop or let it go. */
  hold(): void
  destroy(error: Error): void
}

export class SocketWrites {
  readonly #host: WriteHost
  /** What waits for the connection: the writes' callbacks fail if it never comes. */
  #waiting: { go(): void; cb?: Callback }[] = []
  /** Bytes of the `_writev` whose callback waits for the sends to drain (counted once in `bytesWritten`). */
  #inHand = 0
  /** Bytes handed to the stream. */
  #sent = 0
  /** A `flush()` watches the sends; writes came after it started. */
  watching = false
  #unwatched = false

  constructor(host: WriteHost) {
    this.#host = host
  }

  /** `bytesWritten`: sent, queued for the kernel, and held by the writable side (`held`). */
  written(held: number): number {
    return this.#sent + held - this.#inHand
  }

  /** Every chunk queued at once (they go to the kernel as one send). */
  writev(chunks: { chunk: Buffer }[], cb: Callback): void {
    const stream = this.#host.stream()
    if (stream === undefined) {
      this.#waiting.push({ go: () => this.writev(chunks, cb), cb })
      return
    }
    this.#host.activity()
    let room = true
    try {
      for (const { chunk } of chunks) {
        room = stream.write(chunk)
        this.#sent += chunk.length
      }
    } catch (e) {
      cb(stream.closed ? null : (e as Error))
      return
    }
    this.#watch(stream)
    if (room) return cb()
    for (const { chunk } of chunks) this.#inHand += chunk.length
    stream.drained().then(
      () => {
        this.#inHand = 0
        cb()
      },
      (e: Error) => {
        this.#inHand = 0
        cb(e)
      },
    )
  }

  /** Shuts the write side once every write went (`'finish'` waits for it, as net.Socket's waits for its shutdown). */
  final(cb: Callback): void {
    const stream = this.#host.stream()
    if (stream === undefined) {
      this.#waiting.push({ go: () => this.final(cb) })
      return
    }
    const gone = (e: unknown, syscall?: string): void => {
      // The peer is gone already (net.Socket treats it the same way).
      const code = (e as { code?: string }).code
      cb(code === 'ENOTCONN' || code === 'ERR_ZCIO_CLOSED' ? null : systemError(e, syscall))
    }
    try {
      stream.shutdown('write')
    } catch (e) {
      return gone(e, 'shutdown')
    }
    // Closing earlier would drop queued sends.
    stream.flush().then(() => cb(), (e: unknown) => gone(e))
  }

  /** The connection came: what waited for it goes. */
  release(): void {
    for (const w of this.#waiting.splice(0)) w.go()
  }

  /** Destroyed: what waited for a connection fails, as net.Socket's writes do. */
  abandon(): void {
    for (const w of this.#waiting.splice(0)) {
      w.cb?.(zcioError('ERR_SOCKET_CLOSED_BEFORE_CONNECTION', 'Socket closed before the connection was established'))
    }
  }

  /** A new connection of the same socket: counts start again. */
  reset(): void {
    this.#sent = 0
    this.#inHand = 0
    this.watching = false
    this.#unwatched = false
  }

  #watch(stream: StreamPort): void {
    this.#unwatched = true
    if (this.watching) return
    this.watching = true
    this.#unwatched = false
    this.#host.hold()
    stream.flush().then(
      () => {
        this.watching = false
        this.#host.activity()
        if (this.#unwatched && !this.#host.destroyed()) this.#watch(stream)
        else this.#host.hold()
      },
      (e: Error) => {
        this.watching = false
        this.#host.hold()
        // Closed under the write (destroy): not the write's failure.
        if (this.#host.destroyed() || (stream.closed && (e as { code?: string }).code === 'ERR_ZCIO_CLOSED')) return
        this.#host.destroy(systemError(e, 'write'))
      },
    )
  }
}
