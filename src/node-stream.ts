// A `stream.Duplex` over a TcpStream, receiving through a BufferGroup.

import { Duplex } from 'node:stream'
import type { BufferGroup, Chunk } from './group.js'
import type { TcpStream } from './stream.js'

/**
 * A `stream.Duplex` over `stream`, receiving through `group`. Each chunk is
 * copied once into a `Buffer` (Node streams hand data on to consumers that
 * keep it) and released at once; while the readable side is full, chunks
 * are held instead, so the group runs dry and TCP flow control slows the
 * peer down. Writes go through `send`.
 */
export function toNodeStream(stream: TcpStream, group: BufferGroup): Duplex {
  const held: Chunk[] = []
  let receiving: { stop(): void } | undefined
  let wanted = false
  let ended = false
  const region = group.buffer
  const size = group.bufferSize
  const duplex: Duplex = new Duplex({
    read: () => {
      wanted = true
      while (wanted && held.length > 0) {
        const c = held.shift()!
        wanted = duplex.push(Buffer.from(c.data))
        c.release()
      }
      if (ended && held.length === 0) duplex.push(null)
      receiving ??= group.recvCallback(stream, {
        onChunk: (id, offset, length) => {
          const start = id * size + offset
          if (wanted && held.length === 0) {
            wanted = duplex.push(Buffer.from(region.subarray(start, start + length)))
            group.put(id)
          } else {
            held.push({ bufferId: id, data: region.subarray(start, start + length), release: () => group.put(id) })
          }
        },
        onEnd: (error) => {
          ended = true
          if (error) duplex.destroy(error)
          else if (held.length === 0) duplex.push(null)
        },
      })
    },
    write: (chunk: Buffer, _enc, cb) => {
      stream.send(chunk).then(() => cb(), cb)
    },
    final: (cb) => {
      try {
        stream.shutdown('write')
        cb()
      } catch (e) {
        cb(e as Error)
      }
    },
    destroy: (err, cb) => {
      receiving?.stop()
      for (const c of held.splice(0)) c.release()
      stream.close().then(() => cb(err), cb)
    },
  })
  return duplex
}
