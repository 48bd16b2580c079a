// A zcio QueuePair speaking rdma-core's ibv_rc_pingpong protocol: the same
// TCP exchange (port 18515 by default; one 52-byte "LID:QPN:PSN:GID" record
// each way, then "done") and the same traffic (each side sends `size` bytes
// once its previous send and one receive have completed, `iters` times).
// Both sides send buffers of 0x7b bytes, so every receive is checked for them.
//
//   node rdma-pingpong.js server [port] [iters] [size]
//   node rdma-pingpong.js client <host> [port] [iters] [size]
//
// Prints "OK <iters> iterations, <bytes> bytes checked" on success.

import * as net from 'node:net'
import { once } from 'node:events'
import { zcio } from './load.js'

const { rdma } = zcio
const RECV = 1
const SEND = 2
const RECORD = 52 // sizeof "0000:000000:000000:00000000000000000000000000000000"

type Endpoint = { lid: number; qpn: number; psn: number; gid: string }

function encode(e: Endpoint): Buffer {
  const text = `${e.lid.toString(16).padStart(4, '0')}:${e.qpn.toString(16).padStart(6, '0')}:${e.psn
    .toString(16)
    .padStart(6, '0')}:${e.gid}`
  const b = Buffer.alloc(RECORD)
  b.write(text, 'latin1')
  return b
}

function decode(b: Buffer): Endpoint {
  const m = /^([0-9a-f]+):([0-9a-f]+):([0-9a-f]+):([0-9a-f]{32})/i.exec(b.toString('latin1'))
  if (!m) throw new Error(`bad peer record ${JSON.stringify(b.toString('latin1'))}`)
  return { lid: parseInt(m[1], 16), qpn: parseInt(m[2], 16), psn: parseInt(m[3], 16), gid: m[4].toLowerCase() }
}

/** Reads exactly `n` bytes. */
async function read(sock: net.Socket, n: number): Promise<Buffer> {
  const parts: Buffer[] = []
  let got = 0
  while (got < n) {
    const chunk = sock.read(Math.min(n - got, sock.readableLength || n - got)) as Buffer | null
    if (chunk === null) {
      if (sock.readableEnded) throw new Error('peer closed the exchange')
      await Promise.race([once(sock, 'readable'), once(sock, 'end')])
      continue
    }
    parts.push(chunk)
    got += chunk.length
  }
  return Buffer.concat(parts)
}

async function main(): Promise<void> {
  const [mode, ...rest] = process.argv.slice(2)
  const host = mode === 'client' ? rest.shift()! : undefined
  const port = Number(rest[0] ?? 18515)
  const iters = Number(rest[1] ?? 1000)
  const size = Number(rest[2] ?? 4096)
  const rxDepth = 64

  const ctx = rdma.open(process.env.ZCIO_RDMA_DEVICE)
  const pd = ctx.allocPd()
  const cq = ctx.createCq(rxDepth + 2)
  const prepared = pd.createQp(cq, cq, { maxSendWr: 2, maxRecvWr: rxDepth, maxSge: 1 })
  const mr = pd.allocate(2 * size)
  // ibv_rc_pingpong sends (and receives into) one buffer that starts as
  // 0x7b bytes: send the same, so every message either way must be 0x7b.
  mr.buffer.fill(0x7b, 0, size)
  const recvAt = size // receives land in the second half
  const me = prepared.endpoint()

  let qp: ReturnType<typeof prepared.handshake>
  let sock: net.Socket
  if (mode === 'server') {
    const server = net.createServer()
    server.listen(port)
    await once(server, 'listening')
    console.log(`listening on ${port}`) // the peer may connect now
    ;[sock] = (await once(server, 'connection')) as [net.Socket]
    server.close()
    const peer = decode(await read(sock, RECORD))
    qp = prepared.handshake(peer)
    for (let i = 0; i < rxDepth; i++) qp.postReceive(mr, recvAt, recvAt + size, RECV)
    sock.write(encode(me))
    await read(sock, 5) // "done"
  } else if (mode === 'client') {
    // The peer's server may not be listening yet: retry for a while.
    for (let attempt = 0; ; attempt++) {
      sock = net.connect(port, host)
      try {
        await once(sock, 'connect')
        break
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ECONNREFUSED' || attempt >= 300) throw e
        await new Promise((r) => setTimeout(r, 100))
      }
    }
    sock.write(encode(me))
    const peer = decode(await read(sock, RECORD))
    sock.write(Buffer.from('done\0', 'latin1'))
    qp = prepared.handshake(peer)
    for (let i = 0; i < rxDepth; i++) qp.postReceive(mr, recvAt, recvAt + size, RECV)
  } else {
    throw new Error('usage: rdma-pingpong.js server|client ...')
  }
  sock.destroy()

  let pending = RECV
  let routs = rxDepth
  let sent = 0
  let received = 0
  let checked = 0
  if (mode === 'client') {
    qp.postSend(mr, 0, size, SEND)
    pending |= SEND
  }
  while (received < iters || sent < iters) {
    for (const wc of await cq.wait(2)) {
      if (wc.status !== 0) throw new Error(`work request ${wc.wrId} failed with status ${wc.status}`)
      if (wc.wrId === SEND) sent++
      else {
        const data = mr.buffer.subarray(recvAt, recvAt + wc.byteLen)
        if (wc.byteLen !== size || !data.every((b) => b === 0x7b)) throw new Error(`receive ${received} holds unexpected data`)
        checked += wc.byteLen
        data.fill(0)
        received++
        if (--routs <= 1) {
          for (; routs < rxDepth; routs++) qp.postReceive(mr, recvAt, recvAt + size, RECV)
        }
      }
      pending &= ~wc.wrId
      if (sent < iters && pending === 0) {
        qp.postSend(mr, 0, size, SEND)
        pending = RECV | SEND
      }
    }
  }
  console.log(`OK ${iters} iterations, ${checked} bytes checked`)
}

main().catch((e: Error) => {
  console.error(`FAIL ${e.stack ?? e}`)
  process.exit(1)
})
