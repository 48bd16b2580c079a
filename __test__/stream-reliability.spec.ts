// Regressions of TcpStream's sends and close: memory the kernel reads is
// memory zcio keeps, a chain that could not be queued in full links no
// stranger, a send resolves only when all of it went, close ends in bounded
// time whatever the peer does, and forged receivers get a coded error.

import test from 'ava'
import * as fs from 'node:fs'
import * as net from 'node:net'
import { codeOf, needs, rejectionCode, zcio } from './support.js'
import { pair, payload } from './net-support.js'

const { Ring, RegisteredBufferPool, BufferGroup, TcpStream, TcpListener } = zcio
type Ring = InstanceType<typeof Ring>
type Stream = InstanceType<typeof TcpStream>

const netTest = needs('bufRing')
const zcTest = needs('sendZc')

/** A Node server that accepts one connection and reads nothing until `read()` is called. */
async function stalledPeer(): Promise<{ port: number; read(): Promise<Buffer>; socket: Promise<net.Socket>; close(): void }> {
  let resolveSocket!: (s: net.Socket) => void
  const socket = new Promise<net.Socket>((r) => (resolveSocket = r))
  const server = net.createServer({ pauseOnConnect: true }, (s) => resolveSocket(s))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as net.AddressInfo).port
  return {
    port,
    socket,
    read: async () => {
      const s = await socket
      const parts: Buffer[] = []
      s.on('data', (d: Buffer) => parts.push(d))
      s.resume()
      await new Promise<void>((r) => s.on('end', r))
      return Buffer.concat(parts)
    },
    close: () => {
      void socket.then((s) => s.destroy())
      server.close()
    },
  }
}

const fdOpen = (fd: number): boolean => {
  try {
    fs.fstatSync(fd)
    return true
  } catch {
    return false
  }
}

netTest('a send in flight keeps its bytes when its ArrayBuffer is transferred and collected', async (t) => {
  const ring = new Ring()
  const peer = await stalledPeer()
  const client = await TcpStream.connect(ring, { port: peer.port })
  const data = payload(16 << 20)
  const ab = new ArrayBuffer(data.length)
  new Uint8Array(ab).set(data)
  const sending = client.send(new Uint8Array(ab))
  // The peer reads nothing yet: most of the send is still the kernel's to do.
  await new Promise((r) => setTimeout(r, 50))
  const moved = structuredClone(ab, { transfer: [ab] })
  t.is(ab.byteLength, 0, 'transferred')
  new Uint8Array(moved).fill(0xee)
  globalThis.gc?.()
  const garbage = Array.from({ length: 64 }, () => Buffer.alloc(256 * 1024, 0xdd))
  const received = peer.read()
  t.is(await sending, data.length)
  client.shutdown()
  const got = await received
  t.is(got.length, data.length)
  t.true(got.equals(data), 'the peer received bytes the program never sent')
  t.true(garbage.length > 0)
  await client.close()
  peer.close()
  ring.close()
})

netTest('a send whose ArrayBuffer was transferred before its turn rejects ERR_ZCIO_DETACHED', async (t) => {
  const ring = new Ring()
  const peer = await stalledPeer()
  const client = await TcpStream.connect(ring, { port: peer.port })
  const first = client.send(payload(8 << 20))
  const ab = new ArrayBuffer(1000)
  const second = client.send(new Uint8Array(ab))
  structuredClone(ab, { transfer: [ab] })
  const third = client.send(Buffer.from('after'))
  void peer.read()
  t.is(await first, 8 << 20)
  t.is(await rejectionCode(second), 'ERR_ZCIO_DETACHED')
  t.is(await third, 5)
  await client.close()
  peer.close()
  ring.close()
})

netTest('fromFd refuses a descriptor zcio already owns and leaves it working', async (t) => {
  const ring = new Ring()
  const { server, client, listener } = await pair(ring)
  const group = new BufferGroup(ring, { groupId: 5, bufferSize: 4096, bufferCount: 8 })
  t.is(codeOf(() => TcpStream.fromFd(ring, client.fd)), 'ERR_ZCIO_FD_IN_USE')
  t.is(codeOf(() => TcpStream.fromFd(ring, server.fd)), 'ERR_ZCIO_FD_IN_USE')
  t.true(fdOpen(client.fd), 'the refused descriptor is still open')
  t.is(await client.send(Buffer.from('still mine')), 10)
  const c = (await group.recv(server))!
  t.is(Buffer.from(c.data).toString(), 'still mine')
  c.release()
  await client.close()
  await server.close()
  listener.close()
  ring.close()
})

zcTest('a chain that breaks on a bad buffer links nothing queued after it', async (t) => {
  const ring = new Ring()
  const other = new Ring()
  const pool = new RegisteredBufferPool(other, 4096, 2)
  const { index } = pool.acquire()
  const peer = await stalledPeer()
  const a = await TcpStream.connect(ring, { port: peer.port })
  const { server, client, listener } = await pair(ring)
  const group = new BufferGroup(ring, { groupId: 6, bufferSize: 4096, bufferCount: 8 })
  // A blocks (its peer reads nothing), then the pool slice of another ring
  // fails to queue: without ending the chain, B's send waits behind A's.
  const big = a.sendZc([payload(64 << 20), { pool, index }])
  const started = Date.now()
  t.is(await client.send(Buffer.from('hello')), 5)
  const c = (await group.recv(server))!
  t.is(Buffer.from(c.data).toString(), 'hello')
  c.release()
  t.true(Date.now() - started < 2000, `a stranger's send waited ${Date.now() - started} ms`)
  void peer.read()
  const r = await big
  t.deepEqual(r.unsent, [1])
  t.is(r.bytes, 64 << 20)
  await a.close()
  await client.close()
  await server.close()
  listener.close()
  pool.release(index)
  pool.close()
  other.close()
  peer.close()
  ring.close()
})

netTest('send() rejects with the kernel error and bytesWritten when the peer resets part-way', async (t) => {
  const ring = new Ring()
  const peer = await stalledPeer()
  const client = await TcpStream.connect(ring, { port: peer.port })
  const size = 64 << 20
  const sending = client.send(payload(size))
  const s = await peer.socket
  let read = 0
  s.on('data', (d: Buffer) => {
    read += d.length
    if (read > 1 << 20) s.resetAndDestroy()
  })
  s.resume()
  const e = await sending.then(
    () => undefined,
    (err: unknown) => err as { code?: string; errno?: number; syscall?: string; bytesWritten?: number },
  )
  t.truthy(e, 'send() resolved although not all of data went')
  t.true(['ECONNRESET', 'EPIPE'].includes(e!.code!), `code ${e!.code}`)
  t.is(e!.syscall, 'send')
  t.true(typeof e!.errno === 'number' && e!.errno < 0)
  t.true(e!.bytesWritten! > 0 && e!.bytesWritten! < size, `bytesWritten ${e!.bytesWritten}`)
  // Writes queued as one send report the kernel's error too, not a short send.
  for (let i = 0; i < 100; i++) client.write(payload(4096, i))
  const code = await rejectionCode(client.flush())
  t.true(['ECONNRESET', 'EPIPE'].includes(code!), `flush: ${code}`)
  await client.close()
  peer.close()
  ring.close()
})

zcTest('close() ends in bounded time when the peer never reads a zero-copy send', async (t) => {
  const ring = new Ring()
  const peer = await stalledPeer()
  const client = await TcpStream.connect(ring, { port: peer.port })
  const pool = new RegisteredBufferPool(ring, 1 << 20, 16)
  const slices = Array.from({ length: 16 }, () => ({ pool, index: pool.acquire().index }))
  const sending = client.sendZc(slices)
  await new Promise((r) => setTimeout(r, 100))
  const fd = client.fd
  const started = Date.now()
  await client.close({ timeout: 200 })
  const took = Date.now() - started
  t.true(took < 3000, `close took ${took} ms`)
  const r = await sending
  t.true(r.bytes >= 0)
  t.false(fdOpen(fd) && fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:'), 'the descriptor is closed')
  for (const s of slices) pool.release(s.index)
  pool.close()
  peer.close()
  ring.close()
})

zcTest('destroy() aborts at once; ring.close() with a stalled zero-copy send returns and settles it', async (t) => {
  const ring = new Ring()
  const peer = await stalledPeer()
  const client = await TcpStream.connect(ring, { port: peer.port })
  const data = payload(32 << 20)
  const sending = client.sendZc(data)
  await new Promise((r) => setTimeout(r, 100))
  const started = Date.now()
  await client.destroy()
  t.true(Date.now() - started < 1000)
  await sending.then(
    () => t.pass(),
    () => t.pass(),
  )
  const peer2 = await stalledPeer()
  const c2 = await TcpStream.connect(ring, { port: peer2.port })
  const s2 = c2.sendZc(data)
  await new Promise((r) => setTimeout(r, 100))
  const t0 = Date.now()
  ring.close()
  t.true(Date.now() - t0 < 3000, `ring.close() blocked ${Date.now() - t0} ms`)
  await s2.then(
    () => t.pass(),
    () => t.pass(),
  )
  peer.close()
  peer2.close()
})

netTest('write() returns false past the high-water mark and drained() waits for room', async (t) => {
  const ring = new Ring()
  const peer = await stalledPeer()
  const client = await TcpStream.connect(ring, { port: peer.port, highWaterMark: 1 << 20 })
  t.is(client.writableHighWaterMark, 1 << 20)
  const chunk = payload(64 * 1024)
  let writes = 0
  while (client.write(chunk)) {
    writes++
    if (writes > 10_000) break
  }
  t.true(writes < 10_000, 'write() never said stop')
  t.true(client.writableLength >= 1 << 20)
  let drained = false
  const waiting = client.drained().then(() => (drained = true))
  await new Promise((r) => setTimeout(r, 50))
  const reading = peer.read()
  await waiting
  t.true(drained)
  t.true(client.writableLength < 1 << 20)
  await client.flush()
  t.is(client.writableLength, 0)
  client.shutdown()
  t.is((await reading).length, (writes + 1) * chunk.length)
  t.is(codeOf(() => (client.writableHighWaterMark = -1)), 'ERR_OUT_OF_RANGE')
  t.is(await rejectionCode(TcpStream.connect(ring, { port: peer.port, highWaterMark: 'x' as unknown as number })), 'ERR_INVALID_ARG_TYPE')
  await client.close()
  peer.close()
  ring.close()
})

test('forged receivers get ERR_INVALID_ARG_TYPE, and promise methods reject', async (t) => {
  const s = Object.create(TcpStream.prototype) as Stream
  t.is(codeOf(() => s.write(Buffer.from('x'))), 'ERR_INVALID_ARG_TYPE')
  t.is(codeOf(() => s.fd), 'ERR_INVALID_ARG_TYPE')
  t.is(codeOf(() => s.shutdown()), 'ERR_INVALID_ARG_TYPE')
  t.is(await rejectionCode(s.send(Buffer.from('x'))), 'ERR_INVALID_ARG_TYPE')
  t.is(await rejectionCode(s.close()), 'ERR_INVALID_ARG_TYPE')
  const r = Object.create(Ring.prototype) as Ring
  t.is(codeOf(() => r.submit()), 'ERR_INVALID_ARG_TYPE')
  t.is(codeOf(() => r.closed), 'ERR_INVALID_ARG_TYPE')
  t.is(await rejectionCode(r.completions()), 'ERR_INVALID_ARG_TYPE')
  const p = Object.create(RegisteredBufferPool.prototype) as InstanceType<typeof RegisteredBufferPool>
  t.is(codeOf(() => p.acquire()), 'ERR_INVALID_ARG_TYPE')
  t.is(await rejectionCode(p.readFixed(0, 0, 0, 1)), 'ERR_INVALID_ARG_TYPE')
  t.is(codeOf(() => TcpStream.prototype.write.call({}, Buffer.from('x'))), 'ERR_INVALID_ARG_TYPE')
  t.regex(String((await import('node:util')).inspect(p)), /not an instance/)
})

netTest('sends of pool and group memory go in place; of other memory, as a copy', async (t) => {
  const ring = new Ring()
  const { server, client, listener } = await pair(ring)
  const group = new BufferGroup(ring, { groupId: 7, bufferSize: 4096, bufferCount: 8 })
  const pool = new RegisteredBufferPool(ring, 4096, 1)
  const { index, buffer } = pool.acquire()
  buffer.set(Buffer.from('from the pool'))
  // A view of pool memory sent as a plain Uint8Array, then the pool closed
  // while the send may be queued: the bytes still go, the memory is kept.
  const sent = client.send(buffer.subarray(0, 13))
  const got = (await group.recv(server))!
  t.is(await sent, 13)
  // Echo the chunk's own memory back: a view into the group's region.
  const echoed = server.send(got.data)
  t.is(await echoed, 13)
  got.release()
  const back = (await group.recv(client))!
  t.is(Buffer.from(back.data).toString(), 'from the pool')
  back.release()
  const shared = new Uint8Array(new SharedArrayBuffer(6))
  shared.set(Buffer.from('shared'))
  t.is(await client.send(shared), 6)
  const c = (await group.recv(server))!
  t.is(Buffer.from(c.data).toString(), 'shared')
  c.release()
  pool.release(index)
  pool.close()
  await client.close()
  await server.close()
  listener.close()
  ring.close()
})

netTest('forged rings and pools passed as arguments get ERR_INVALID_ARG_TYPE', async (t) => {
  const fakeRing = Object.create(Ring.prototype) as Ring
  t.is(codeOf(() => new RegisteredBufferPool(fakeRing, 4096, 1)), 'ERR_INVALID_ARG_TYPE')
  t.is(codeOf(() => new BufferGroup(fakeRing, { groupId: 1, bufferSize: 64, bufferCount: 1 })), 'ERR_INVALID_ARG_TYPE')
  t.is(await rejectionCode(TcpStream.connect(fakeRing, { port: 1 })), 'ERR_INVALID_ARG_TYPE')
  t.is(codeOf(() => TcpListener.bind(fakeRing, { port: 0 })), 'ERR_INVALID_ARG_TYPE')
  const ring = new Ring()
  const { server, client, listener } = await pair(ring)
  const fakePool = Object.create(RegisteredBufferPool.prototype) as InstanceType<typeof RegisteredBufferPool>
  const r = await client.sendZc({ pool: fakePool, index: 0 }).then(
    () => 'resolved',
    (e: { code?: string }) => e.code,
  )
  t.is(r, 'ERR_INVALID_ARG_TYPE')
  await client.close()
  await server.close()
  listener.close()
  ring.close()
})

const sqpollTest = needs('bufRing', 'sqpoll')

sqpollTest("closing an SQPOLL ring cancels a pending receive; it never reports the peer's end", async (t) => {
  // Closing the ring's sockets before their receives were cancelled closed
  // the peer's descriptor first: the receive, not yet reached by the
  // cancel (an SQPOLL thread picks it up later), saw an end of stream.
  for (let i = 0; i < 20; i++) {
    const ring = new Ring({ entries: 8, sqpoll: 10 })
    const { client, listener } = await pair(ring)
    const group = new BufferGroup(ring, { groupId: 0, bufferSize: 16, bufferCount: 1 })
    const got = group.recv(client).then(
      (c) => (c === null ? 'end of stream' : 'data'),
      (e: { code?: string }) => e.code,
    )
    listener.close()
    ring.close()
    const outcome = await got
    t.true(outcome === 'ECANCELED' || outcome === 'ERR_ZCIO_CLOSED', `round ${i}: the receive got ${outcome}`)
  }
})
