import test from 'ava'
import * as fs from 'node:fs'
import { spawnSync } from 'node:child_process'
import { pipeline } from 'node:stream/promises'
import { Readable, Writable } from 'node:stream'
import { backend, codeOf, needs, probed, rejectionCode, zcio } from './support.js'
import { pair, payload } from './net-support.js'

const { Ring, RegisteredBufferPool, BufferGroup, TcpStream, TcpListener } = zcio
type Ring = InstanceType<typeof Ring>
type Stream = InstanceType<typeof TcpStream>
type InetAddress = import('../index.js').InetAddress

/** Visible skip where the kernel lacks provided-buffer rings. */
const netTest = needs('bufRing')
const zcTest = needs('sendZc')
const incTest = needs('bufRingIncremental')

async function receiveAll(group: InstanceType<typeof BufferGroup>, s: Stream): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const c of group.recvMultishot(s)) {
    parts.push(Buffer.from(c.data))
    c.release()
  }
  return Buffer.concat(parts)
}

async function transfer(t: { true(v: boolean, m?: string): void; is(a: unknown, b: unknown, m?: string): void }, incremental: boolean, count: number, size: number): Promise<void> {
  const ring = new Ring()
  const { server, client, listener } = await pair(ring)
  const group = new BufferGroup(ring, { groupId: 3, bufferSize: size, bufferCount: count, incremental })
  const data = payload(8 << 20, count)
  const sent = (async () => {
    for (let off = 0; off < data.length; off += 65536) await client.send(data.subarray(off, off + 65536))
    client.shutdown()
  })()
  const got = await receiveAll(group, server)
  await sent
  t.is(got.length, data.length)
  t.true(got.equals(data), 'bytes differ')
  t.is(group.stats().chunkCount, 0)
  t.is(group.availableCount, count)
  await client.close()
  await server.close()
  listener.close()
  ring.close()
}

netTest('byte-exact 8 MiB through multishot receive, plain group', async (t) => {
  await transfer(t, false, 64, 16384)
})

incTest('byte-exact 8 MiB through multishot receive, incremental group', async (t) => {
  await transfer(t, true, 4, 1 << 20)
})

netTest('ENOBUFS storm: a 4-buffer group and a fast sender lose nothing', async (t) => {
  const ring = new Ring()
  const { server, client, listener } = await pair(ring)
  const group = new BufferGroup(ring, { groupId: 9, bufferSize: 4096, bufferCount: 4 })
  const data = payload(4 << 20, 7)
  const sent = client.send(data).then(() => client.shutdown())
  const parts: Buffer[] = []
  // Hold chunks across turns so the group runs dry.
  for await (const c of group.recvMultishot(server, { maxHeldChunks: 64 })) {
    parts.push(Buffer.from(c.data))
    await new Promise((r) => setImmediate(r))
    c.release()
  }
  await sent
  t.true(Buffer.concat(parts).equals(data))
  t.true(group.enobufsCount > 0, 'no ENOBUFS')
  t.true(group.rearmCount > 0, 'no re-arm')
  await Promise.all([client.close(), server.close()])
  listener.close()
  ring.close()
})

netTest('recv: one chunk, ENOBUFS when every buffer is held, null at end of stream', async (t) => {
  const ring = new Ring()
  const { server, client, listener } = await pair(ring)
  const group = new BufferGroup(ring, { groupId: 1, bufferSize: 64, bufferCount: 1 })
  await client.send(Buffer.from('hello'))
  const c = (await group.recv(server))!
  t.is(Buffer.from(c.data).toString(), 'hello')
  t.is(group.heldCount, 1)
  await client.send(Buffer.from('more'))
  t.is(await rejectionCode(group.recv(server)), 'ENOBUFS')
  c.release()
  t.is(codeOf(() => c.release()), 'ERR_ZCIO_NOT_ACQUIRED')
  t.is(codeOf(() => group.put(0)), 'ERR_ZCIO_NOT_ACQUIRED')
  const d = (await group.recv(server))!
  t.is(Buffer.from(d.data).toString(), 'more')
  group.put(d)
  client.shutdown()
  t.is(await group.recv(server), null)
  await Promise.all([client.close(), server.close()])
  listener.close()
  ring.close()
})

netTest('BufferGroup argument checks and group id in use', (t) => {
  const ring = new Ring()
  const g = new BufferGroup(ring, { groupId: 5, bufferSize: 128, bufferCount: 2 })
  t.is(codeOf(() => new BufferGroup(ring, { groupId: 5, bufferSize: 128, bufferCount: 2 })), 'ERR_ZCIO_GROUP_IN_USE')
  t.is(codeOf(() => new BufferGroup(ring, { groupId: 6, bufferSize: 128, bufferCount: 3 })), 'ERR_INVALID_ARG_VALUE')
  t.is(codeOf(() => new BufferGroup(ring, { groupId: 6, bufferSize: 0, bufferCount: 2 })), 'ERR_INVALID_ARG_VALUE')
  t.is(codeOf(() => new BufferGroup(ring, { groupId: 70000, bufferSize: 1, bufferCount: 2 })), 'ERR_OUT_OF_RANGE')
  t.is(codeOf(() => new BufferGroup(ring, { groupId: '1' as unknown as number, bufferSize: 1, bufferCount: 2 })), 'ERR_INVALID_ARG_TYPE')
  t.is(codeOf(() => new BufferGroup({} as Ring, { groupId: 1, bufferSize: 1, bufferCount: 2 })), 'ERR_INVALID_ARG_TYPE')
  t.is(g.bufferCount, 2)
  t.is(g.availableCount, 2)
  g.close()
  t.true(g.closed)
  // The id is free again once no receive can land in the old group.
  new BufferGroup(ring, { groupId: 5, bufferSize: 128, bufferCount: 2 }).close()
  ring.close()
})

netTest('connect errors are Node-style; bind in use; addresses', async (t) => {
  const ring = new Ring()
  const l = TcpListener.bind(ring, { port: 0 })
  const port = l.address.port!
  t.is(codeOf(() => TcpListener.bind(ring, { port })), 'EADDRINUSE')
  l.close()
  const err = (await TcpStream.connect(ring, { port }).catch((e: NodeJS.ErrnoException) => e)) as NodeJS.ErrnoException
  t.is(err.code, 'ECONNREFUSED')
  t.is(err.syscall, 'connect')
  t.is(err.errno, -111)
  // A name resolves (address.spec.ts); the port is still closed.
  t.is(await rejectionCode(TcpStream.connect(ring, { host: 'localhost', port })), 'ECONNREFUSED')
  t.is(await rejectionCode(TcpStream.connect(ring, { port: 70000 })), 'ERR_OUT_OF_RANGE')
  const file = fs.openSync('/dev/null', 'r')
  t.is(codeOf(() => TcpStream.fromFd(ring, file)), 'ENOTSOCK')
  fs.closeSync(file) // still ours: a refused descriptor is not taken
  ring.close()
})

netTest('IPv6 and Unix stream sockets', async (t) => {
  const ring = new Ring()
  const group = new BufferGroup(ring, { groupId: 2, bufferSize: 256, bufferCount: 4 })
  const path = `/tmp/zcio-test-${process.pid}.sock`
  for (const opts of [{ host: '::1', port: 0 }, { path }]) {
    const l = TcpListener.bind(ring, opts)
    const accepted = l.accept()
    const c = await TcpStream.connect(ring, opts.path ? { path } : { host: '::1', port: (l.address as InetAddress).port })
    const s = (await accepted)!
    t.is(l.address.family, opts.path ? 'unix' : 'IPv6')
    c.setNoDelay(true)
    await c.send(Buffer.from('ping'))
    const chunk = (await group.recv(s))!
    t.is(Buffer.from(chunk.data).toString(), 'ping')
    chunk.release()
    await Promise.all([c.close(), s.close()])
    l.close()
  }
  fs.rmSync(path, { force: true })
  ring.close()
})

zcTest('sendZc settles after the notification and reports the copy; pool buffers stay in flight', async (t) => {
  const ring = new Ring()
  const { server, client, listener } = await pair(ring)
  const pool = new RegisteredBufferPool(ring, 65536, 2)
  const b = pool.acquire()
  b.buffer.fill(0x5a)
  const p = client.sendZc([{ pool, index: b.index }, Buffer.from('tail')])
  t.is(codeOf(() => pool.release(b.index)), 'ERR_ZCIO_BUFFER_IN_FLIGHT')
  const r = await p
  t.deepEqual(r, { bytes: 65536 + 4, copied: true, unsent: [] })
  pool.release(b.index)
  const batch = await ring.sendZcBatch([
    { stream: client, buffers: Buffer.from('a') },
    { stream: {} as Stream, buffers: Buffer.from('b') },
  ])
  t.is((batch[0] as { bytes: number }).bytes, 1)
  t.is(((batch[1] as { error: NodeJS.ErrnoException }).error).code, 'ERR_INVALID_ARG_TYPE')
  await Promise.all([client.close(), server.close()])
  listener.close()
  ring.close()
})

netTest('peer reset mid-stream rejects with ECONNRESET or EPIPE; close settles with nothing in flight', async (t) => {
  const ring = new Ring()
  const { server, client, listener } = await pair(ring)
  // Abort the server side: SO_LINGER 0 makes close() send a reset.
  await server.close()
  const results = await Promise.allSettled(Array.from({ length: 64 }, () => client.send(payload(65536))))
  const codes = new Set(results.filter((r) => r.status === 'rejected').map((r) => ((r as PromiseRejectedResult).reason as NodeJS.ErrnoException).code))
  t.true(codes.size > 0, 'no send failed')
  for (const c of codes) t.true(['EPIPE', 'ECONNRESET', 'ECANCELED'].includes(c!), String(c))
  await client.close()
  t.true(client.closed)
  listener.close()
  ring.close()
})

netTest('toNodeStream plugs into stream.pipeline with backpressure', async (t) => {
  const ring = new Ring()
  const { server, client, listener } = await pair(ring)
  const group = new BufferGroup(ring, { groupId: 4, bufferSize: 4096, bufferCount: 8 })
  const data = payload(2 << 20, 3)
  const parts: Buffer[] = []
  const slowSink = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _e, cb) {
      parts.push(chunk)
      setImmediate(cb)
    },
  })
  const writing = pipeline(Readable.from([data.subarray(0, 1 << 20), data.subarray(1 << 20)]), client.toNodeStream(group))
  await pipeline(server.toNodeStream(group), slowSink)
  await writing
  t.true(Buffer.concat(parts).equals(data))
  t.is(group.stats().chunkCount, 0)
  listener.close()
  ring.close()
})

netTest('accept iterates connections until the listener closes', async (t) => {
  const ring = new Ring()
  const l = TcpListener.bind(ring, { port: 0 })
  const clients = await Promise.all([1, 2, 3].map(() => TcpStream.connect(ring, { port: l.address.port! })))
  const got: Stream[] = []
  for await (const s of l) {
    got.push(s)
    if (got.length === 3) l.close()
  }
  t.is(got.length, 3)
  t.is(await l.accept(), null)
  await Promise.all([...clients, ...got].map((s) => s.close()))
  ring.close()
})

netTest('a chunk outlives its collected group and its closed ring', async (t) => {
  const ring = new Ring()
  const { server, client, listener } = await pair(ring)
  let group: InstanceType<typeof BufferGroup> | undefined = new BufferGroup(ring, { groupId: 8, bufferSize: 64, bufferCount: 2 })
  await client.send(Buffer.from('kept'))
  const chunk = (await group.recv(server))!
  group = undefined
  for (let i = 0; i < 3; i++) {
    globalThis.gc?.()
    await new Promise((r) => setImmediate(r))
  }
  await Promise.all([client.close(), server.close()])
  listener.close()
  ring.close()
  globalThis.gc?.()
  t.is(Buffer.from(chunk.data).toString(), 'kept')
  chunk.release() // counted back; nothing goes to a kernel that is gone
  t.is(codeOf(() => chunk.release()), 'ERR_ZCIO_NOT_ACQUIRED')
})

/**
 * Whether a zero-copy send's memory stays the kernel's until its
 * notification: on io_uring, and on epoll where sockets take SO_ZEROCOPY
 * (not under qemu-user, which does not know the option: there they copy).
 */
const zeroCopyHolds = backend === 'io_uring' || probed.msgZerocopy
const noZeroCopy = 'sockets do not take SO_ZEROCOPY here (probe().msgZerocopy is false, as under qemu-user): zero-copy sends on epoll copy, the kernel holds none of their memory'
if (!zeroCopyHolds) test.skip(`close() waits for zero-copy notifications while the kernel holds the memory: ${noZeroCopy}`, () => {})

zcTest('close() with zero-copy sends in flight settles after their notifications', async (t) => {
  const ring = new Ring()
  const { server, client, listener } = await pair(ring)
  // On failure too: a ring left open keeps the worker from exiting.
  t.teardown(() => {
    listener.close()
    ring.close()
  })
  const big = payload(4 << 20, 9)
  // Nobody reads: the sends can't all complete before close() cancels them.
  // One call, so that all 32 MiB are in the kernel's hands at once (more
  // than any receive window takes): the kernel must hold some of it.
  const sends = [client.sendZc(Array.from({ length: 8 }, () => big))]
  let closed = false
  // A long bound: this is about waiting for notifications, not the abort.
  const closing = client.close({ timeout: 60_000 }).then(() => (closed = true))
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 20))
  // Bytes sit unread in the peer's receive queue: the kernel still holds
  // the memory, so close() must not have settled. Only where the sends are
  // really zero-copy: on epoll without SO_ZEROCOPY they copy, and nothing
  // is held (see the skipped test below).
  if (zeroCopyHolds) t.false(closed)
  else t.log(`not asserted: ${noZeroCopy}`)
  await server.close() // frees the peer's queue, and with it the memory
  const results = await Promise.allSettled(sends)
  await closing
  t.true(client.closed)
  for (const r of results) {
    if (r.status === 'fulfilled') t.true(r.value.bytes <= 8 * big.length)
    else t.true(['ECANCELED', 'ERR_ZCIO_CLOSED', 'EPIPE', 'ECONNRESET'].includes((r.reason as NodeJS.ErrnoException).code!), String((r.reason as Error).message))
  }
})

netTest('closing a group ends a multishot receive waiting for buffers', async (t) => {
  const ring = new Ring()
  const { server, client, listener } = await pair(ring)
  const group = new BufferGroup(ring, { groupId: 10, bufferSize: 64, bufferCount: 1 })
  let ended: Error | undefined | null = null as Error | undefined | null
  const chunks: number[] = []
  group.recvCallback(server, {
    onChunk: (id) => chunks.push(id), // held: the group runs dry
    onEnd: (e) => (ended = e),
  }, { maxHeldChunks: 4 }) // above the group's 1 buffer: it waits for one, not at its limit
  await client.send(Buffer.alloc(1000))
  while (chunks.length === 0) await new Promise((r) => setTimeout(r, 5))
  await new Promise((r) => setTimeout(r, 20)) // it waits for the buffer back
  t.is(ended, null)
  group.close()
  t.is((ended as unknown as NodeJS.ErrnoException | null)?.code, 'ERR_ZCIO_CLOSED')
  group.put(chunks[0])
  await Promise.all([client.close(), server.close()])
  listener.close()
  ring.close()
})

netTest('write() queues without a promise, goes out vectored and in order; flush() reports errors', async (t) => {
  const ring = new Ring()
  const { server, client, listener } = await pair(ring)
  const group = new BufferGroup(ring, { groupId: 11, bufferSize: 65536, bufferCount: 16 })
  const msgs = Array.from({ length: 5000 }, (_, i) => payload(1 + (i % 200), i + 1))
  const receiving = receiveAll(group, server)
  for (const m of msgs) client.write(m)
  await client.flush()
  await client.send(Buffer.from('end')) // a promise send after writes keeps the order
  client.shutdown()
  const got = await receiving
  t.true(got.equals(Buffer.concat([...msgs, Buffer.from('end')])))
  t.is(codeOf(() => client.write('x' as unknown as Uint8Array)), 'ERR_INVALID_ARG_TYPE')
  // After the peer is gone, a flush rejects with the error a write met.
  await server.close()
  let code: string | undefined
  for (let i = 0; i < 200 && code === undefined; i++) {
    client.write(payload(65536))
    code = await rejectionCode(client.flush())
  }
  t.true(['EPIPE', 'ECONNRESET'].includes(code!), String(code))
  await client.close()
  t.is(codeOf(() => client.write(Buffer.from('x'))), 'ERR_ZCIO_CLOSED')
  listener.close()
  ring.close()
})

test('the addon does not link libibverbs (RDMA loads it on first use)', (t) => {
  const addon = fs.readdirSync(new URL('../..', import.meta.url)).find((f) => f.endsWith('.node'))
  if (!addon) return t.pass('no local build to inspect (installed from a platform package)')
  // readelf reads the NEEDED entries of any architecture's build (ldd only of this machine's).
  const out = spawnSync('readelf', ['-d', '-W', new URL(`../../${addon}`, import.meta.url).pathname], { encoding: 'utf8' })
  if (out.error) {
    t.log(`readelf unavailable (${out.error.message}): NEEDED entries not checked; install binutils`)
    return t.pass()
  }
  t.is(out.status, 0, out.stderr)
  t.notRegex(out.stdout, /libibverbs/)
  t.regex(out.stdout, /\(NEEDED\)\s+Shared library: \[libc\.so/)
})
