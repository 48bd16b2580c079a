// The ring's own guarantees, each found broken once: a chain of linked sends
// reaches an SQPOLL kernel thread whole; work queued on one ring from the
// completions of another is submitted; a closed ring holds no descriptor.

import test from 'ava'
import { probed, zcio } from './support.js'

const { Ring, RegisteredBufferPool, BufferGroup, TcpStream, TcpListener } = zcio
type Ring = InstanceType<typeof Ring>
type Stream = InstanceType<typeof TcpStream>
type Group = InstanceType<typeof BufferGroup>

const required = process.env.ZCIO_REQUIRE_IO_URING === '1'
const netAvailable = probed.ioUring && probed.bufRing
const netTest = netAvailable || required ? test : test.skip
const sqpollTest = (netAvailable && probed.sqpoll) || required ? test : test.skip
if (!netAvailable && !required) console.warn('zcio: skipping ring reliability tests: no provided-buffer rings')
else if (!probed.sqpoll && !required) console.warn('zcio: skipping SQPOLL tests: probe().sqpoll is false')

function payload(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n)
  let x = seed
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    b[i] = x >>> 24
  }
  return b
}

async function pair(server: Ring, client: Ring = server): Promise<{ a: Stream; b: Stream; close(): Promise<void> }> {
  const listener = TcpListener.bind(server, { port: 0 })
  const accepted = listener.accept()
  const b = await TcpStream.connect(client, { port: listener.address.port! })
  const a = (await accepted)!
  return {
    a,
    b,
    async close() {
      await a.close()
      await b.close()
      listener.close()
    },
  }
}

async function receiveAll(group: Group, s: Stream): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const c of group.recvMultishot(s)) {
    parts.push(Buffer.from(c.data))
    c.release()
  }
  return Buffer.concat(parts)
}

/** Where two buffers first differ, for a readable failure. */
function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i
  return n
}

sqpollTest('SQPOLL: linked sends of one stream arrive in order', async (t) => {
  const ring = new Ring({ sqpoll: true })
  t.true(ring.features.sqpoll)
  const { a, b, close } = await pair(ring)
  const group = new BufferGroup(ring, { groupId: 5, bufferSize: 65536, bufferCount: 64 })
  const chunk = 64 << 10
  const count = 16
  const pool = new RegisteredBufferPool(ring, chunk, count)
  const data = payload(chunk * count * 8, 11)
  const got = receiveAll(group, a)
  // Each round queues 16 sends while the first is in flight: the other 15
  // go to the kernel as one chain of linked operations. Pool sends and
  // zero-copy sends are one operation each (plain Uint8Array sends would be
  // merged into one vectored send).
  const indices = Array.from({ length: count }, () => pool.acquire().index)
  for (let off = 0; off < data.length; off += chunk * count) {
    const sends: Promise<unknown>[] = []
    for (let k = 0; k < count; k++) {
      const part = data.subarray(off + k * chunk, off + (k + 1) * chunk)
      if (k % 2 === 0 || !probed.sendZc) {
        pool.get(indices[k]).set(part)
        sends.push(b.send({ pool, index: indices[k] }))
      } else {
        sends.push(b.sendZc(part))
      }
    }
    await Promise.all(sends)
  }
  b.shutdown()
  const received = await got
  t.is(received.length, data.length)
  t.true(received.equals(data), `bytes out of order from offset ${firstDifference(received, data)}`)
  for (const i of indices) pool.release(i)
  await close()
  pool.close()
  group.close()
  ring.close()
})
