// The load run of load.spec.ts, in its own process (so that its descriptor
// limit can be raised first): CONNS loopback connections echo random
// messages through one server-side BufferGroup of 256 buffers for SECONDS;
// every echo is checked byte for byte. Prints one JSON line with the counts.

import { zcio } from './load.js'

const { Ring, BufferGroup, TcpListener, TcpStream } = zcio
type Stream = InstanceType<typeof TcpStream>

const CONNS = Number(process.env.ZCIO_LOAD_CONNS ?? 1000)
const SECONDS = Number(process.env.ZCIO_LOAD_SECONDS ?? 30)

async function main(): Promise<void> {
  const ring = new Ring({ entries: 4096 })
  const serverGroup = new BufferGroup(ring, { groupId: 1, bufferSize: 4096, bufferCount: 256 })
  const clientGroup = new BufferGroup(ring, { groupId: 2, bufferSize: 4096, bufferCount: 1024 })
  const listener = TcpListener.bind(ring, { port: 0, backlog: 4096 })
  const port = listener.address.port!
  let errors = 0
  let firstError: string | undefined
  const fail = (e: unknown): void => {
    errors++
    firstError ??= String((e as Error)?.stack ?? e)
  }

  let deadline = Infinity
  // Server: echo every chunk back, then give the buffer back.
  const servers: Stream[] = []
  void (async () => {
    for await (const conn of listener) {
      servers.push(conn)
      serverGroup.recvCallback(conn, {
        onChunk: (id, offset, length) => {
          const start = id * 4096 + offset
          conn.send(serverGroup.buffer.subarray(start, start + length)).then(
            () => serverGroup.put(id),
            (e) => {
              serverGroup.put(id)
              fail(e)
            },
          )
        },
        onEnd: (e) => {
          // Closing the streams at the end cancels their receives.
          if (e && !(Date.now() >= deadline && (e as NodeJS.ErrnoException).code === 'ECANCELED')) fail(e)
        },
      })
    }
  })()

  const clients: Stream[] = []
  for (let i = 0; i < CONNS; i++) clients.push(await TcpStream.connect(ring, { port }))
  deadline = Date.now() + SECONDS * 1000
  let messages = 0
  let bytes = 0
  const rss: number[] = []
  const heap: number[] = []
  const heapTotal: number[] = []
  // Sampled after a full collection (the run has --expose-gc), so that the
  // JS heap counts what is still in use, not what V8 has yet to collect.
  const sampler = setInterval(() => {
    globalThis.gc?.()
    const m = process.memoryUsage()
    rss.push(m.rss)
    heap.push(m.heapUsed)
    heapTotal.push(m.heapTotal)
  }, 1000)

  await Promise.all(
    clients.map(async (c, k) => {
      let seed = k + 1
      while (Date.now() < deadline && errors === 0) {
        seed = (seed * 1103515245 + 12345) >>> 0
        const len = 1 + (seed % 2048)
        const msg = Buffer.alloc(len, seed & 0xff)
        msg[0] = k & 0xff
        try {
          await c.send(msg)
          let got = 0
          while (got < len) {
            const chunk = await clientGroup.recv(c).catch((e: NodeJS.ErrnoException) => {
              if (e.code === 'ENOBUFS') return undefined // all held by other clients: retry
              throw e
            })
            if (chunk === undefined) {
              await new Promise((r) => setImmediate(r))
              continue
            }
            if (chunk === null) throw new Error('unexpected end of stream')
            if (!Buffer.from(chunk.data).equals(msg.subarray(got, got + chunk.data.length))) throw new Error('echo differs')
            got += chunk.data.length
            chunk.release()
          }
          messages++
          bytes += len
        } catch (e) {
          fail(e)
          return
        }
      }
    }),
  )
  clearInterval(sampler)
  await Promise.all([...clients, ...servers].map((s) => s.close()))
  listener.close()
  ring.close()
  console.log(JSON.stringify({ conns: CONNS, seconds: SECONDS, messages, bytes, errors, firstError, rss, heap, heapTotal }))
}

main().catch((e) => {
  console.log(JSON.stringify({ errors: 1, firstError: String(e?.stack ?? e) }))
})
