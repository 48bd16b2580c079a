// `recvMultishot`: a group's continuous receive as an async iterable of
// chunk objects.

import { zcioError } from './errors.js'
import type { ChunkBook, ChunkRecord } from './group-chunks.js'

/** Received bytes: a view into the group's memory, owned until released. */
export interface Chunk {
  /** The buffer the kernel chose. */
  readonly bufferId: number
  /**
   * The bytes, in place (no copy). After `release()` the same memory takes
   * later data: copy what must outlive the release.
   */
  readonly data: Uint8Array
  /** Gives the chunk back; a second call throws `ERR_ZCIO_NOT_ACQUIRED`. */
  release(): void
}

/**
 * The chunk object of `record`. A chunk whose data view is collected without
 * `release()` is given back by `book` (and counted as leaked).
 */
export function makeChunk(book: ChunkBook, region: Uint8Array, size: number, record: ChunkRecord, offset: number, length: number): Chunk {
  const start = record.bufferId * size + offset
  const data = region.subarray(start, start + length)
  book.watch(data, record)
  return {
    bufferId: record.bufferId,
    data,
    release: () => book.release(record),
  }
}

type Start = (onChunk: (c: Chunk) => void, onEnd: (error?: Error) => void) => { stop(): void }

/** An async iterator over the chunks `start` delivers; `return()` stops it and releases chunks not taken. */
export function chunkIterator(start: Start): AsyncIterableIterator<Chunk> {
  const queue: Chunk[] = []
  const takers: { resolve: (r: IteratorResult<Chunk>) => void; reject: (e: Error) => void }[] = []
  let done = false
  let failure: Error | undefined
  const flush = (): void => {
    while (takers.length > 0 && queue.length > 0) takers.shift()!.resolve({ value: queue.shift()!, done: false })
    if (done && queue.length === 0) {
      for (const t of takers.splice(0)) {
        if (failure) t.reject(failure)
        else t.resolve({ value: undefined, done: true })
      }
    }
  }
  const handle = start(
    (c) => {
      queue.push(c)
      flush()
    },
    (error) => {
      done = true
      failure = error
      flush()
    },
  )
  const iterator: AsyncIterableIterator<Chunk> = {
    next: () => {
      if (queue.length > 0) return Promise.resolve({ value: queue.shift()!, done: false })
      if (done) {
        if (failure) {
          const f = failure
          failure = undefined
          return Promise.reject(f)
        }
        return Promise.resolve({ value: undefined, done: true })
      }
      return new Promise((resolve, reject) => takers.push({ resolve, reject }))
    },
    return: () => {
      handle.stop()
      for (const c of queue.splice(0)) c.release()
      return Promise.resolve({ value: undefined, done: true })
    },
    [Symbol.asyncIterator]() {
      return iterator
    },
  }
  return iterator
}

/** `ERR_ZCIO_RECV_PENDING`: the stream already has a receive that this one would race. */
export function recvPending(what: string): Error {
  return zcioError('ERR_ZCIO_RECV_PENDING', `the stream already has ${what}: one continuous receive per stream, and one-shot receives only without one`)
}
