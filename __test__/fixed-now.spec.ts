// Fixed-buffer transfers done in the call: on epoll a read the page cache
// serves settles without a round through the ring (the buffer is never left
// in flight), errors reject as queued ones do, operations never overtake
// one queued before them, and a chain of such reads still lets the loop run.

import test from 'ava'
import * as fs from 'node:fs'
import { spawnSync } from 'node:child_process'
import { probed, rejectionCode, tmpFile, zcio } from './support.js'

const { Ring, RegisteredBufferPool } = zcio

const forced = process.env.ZCIO_BACKEND === 'auto' ? '' : (process.env.ZCIO_BACKEND ?? '')
const epollTest = forced === 'io_uring' ? test.skip : test
if (forced === 'io_uring') console.warn('zcio: ZCIO_BACKEND=io_uring: skipping the tests of epoll rings')
// Done in the call only where preadv2/pwritev2 take RWF_NOWAIT (not under
// qemu-user, which does not know preadv2: every transfer goes to a worker).
const inCallTest = probed.nowaitFileIo ? epollTest : test.skip
if (!probed.nowaitFileIo && forced !== 'io_uring') {
  console.warn('zcio: preadv2 with RWF_NOWAIT is unknown here (probe().nowaitFileIo is false): skipping the tests of transfers done in the call')
}

function cachedFile(name: string, size: number): { fd: number; data: Buffer } {
  const file = tmpFile(name)
  const data = Buffer.alloc(size)
  for (let i = 0; i < size; i++) data[i] = (i * 31 + 7) & 0xff
  fs.writeFileSync(file, data)
  fs.readFileSync(file) // in the page cache
  return { fd: fs.openSync(file, 'r+'), data }
}

inCallTest('epoll: a page-cache read is done in the call, counted, and never left in flight', async (t) => {
  using ring = new Ring({ backend: 'epoll' })
  const pool = new RegisteredBufferPool(ring, 4096, 2)
  const { fd, data } = cachedFile('now-read', 8192)
  t.teardown(() => fs.closeSync(fd))
  const b = pool.acquire()
  const p = pool.readFixed(fd, b.index, 4096, 4096)
  // The bytes are there before the promise is awaited.
  t.is(pool.inFlightCount, 0)
  t.is(ring.inFlightCount, 0)
  t.deepEqual(Buffer.from(b.buffer), data.subarray(4096))
  t.like(pool.stats(), { submitted: 1, completed: 1, failed: 0 })
  t.is(await p, 4096)
  // A write: done in the call where the file system takes RWF_NOWAIT for
  // buffered writes, else by a worker; either way the same result.
  b.buffer.fill(0xab)
  const w = pool.writeFixed(fd, b.index, 0, 100)
  const inCall = pool.inFlightCount === 0
  t.is(await w, 100)
  t.deepEqual(fs.readFileSync(`/proc/self/fd/${fd}`).subarray(0, 100), Buffer.alloc(100, 0xab))
  t.log(`buffered write done in the call: ${inCall}`)
  pool.release(b.index)
})

inCallTest('epoll: a transfer over 64 KiB goes to the workers (in flight), served the same', async (t) => {
  using ring = new Ring({ backend: 'epoll' })
  const pool = new RegisteredBufferPool(ring, 128 * 1024, 1)
  const { fd, data } = cachedFile('now-big', 256 * 1024)
  t.teardown(() => fs.closeSync(fd))
  const b = pool.acquire()
  const small = pool.readFixed(fd, b.index, 0, 64 * 1024)
  t.is(pool.inFlightCount, 0, '64 KiB is still done in the call')
  t.is(await small, 64 * 1024)
  const big = pool.readFixed(fd, b.index, 4096, 64 * 1024 + 1)
  t.is(pool.inFlightCount, 1, 'one byte more is left to a worker')
  t.is(await big, 64 * 1024 + 1)
  t.is(pool.inFlightCount, 0)
  t.deepEqual(Buffer.from(b.buffer.subarray(0, 64 * 1024 + 1)), data.subarray(4096, 4096 + 64 * 1024 + 1))
  pool.release(b.index)
})

epollTest('epoll: an error done in the call rejects like a queued one and counts as failed', async (t) => {
  using ring = new Ring({ backend: 'epoll' })
  const pool = new RegisteredBufferPool(ring, 4096, 1)
  const file = tmpFile('now-wronly')
  fs.writeFileSync(file, 'abc')
  const fd = fs.openSync(file, 'w')
  t.teardown(() => fs.closeSync(fd))
  const b = pool.acquire()
  const err = await t.throwsAsync(pool.readFixed(fd, b.index, 0, 3))
  t.like(err, { code: 'EBADF', syscall: 'read' })
  t.is(await rejectionCode(pool.readFixed(fd, b.index, 0, 3)), 'EBADF')
  t.like(pool.stats(), { submitted: 2, completed: 2, failed: 2 })
  t.is(pool.inFlightCount, 0)
  pool.release(b.index)
})

epollTest('epoll: a read never overtakes one queued before it on the same pipe', async (t) => {
  using ring = new Ring({ backend: 'epoll' })
  const pool = new RegisteredBufferPool(ring, 4096, 3)
  const [r, w] = pipe()
  t.teardown(() => {
    fs.closeSync(r)
    fs.closeSync(w)
  })
  const [a, b, c] = [pool.acquire(), pool.acquire(), pool.acquire()]
  // Empty pipe: the first read waits; the second queues behind it.
  const first = pool.readFixed(r, a.index, 0, 1)
  const second = pool.readFixed(r, b.index, 0, 1)
  t.is(pool.inFlightCount, 2)
  await new Promise((resolve) => setImmediate(resolve))
  // Now the first waits on the descriptor: a third still goes behind.
  const third = pool.readFixed(r, c.index, 0, 1)
  t.is(pool.inFlightCount, 3)
  fs.writeSync(w, 'xyz')
  t.deepEqual(await Promise.all([first, second, third]), [1, 1, 1])
  t.is(String.fromCharCode(a.buffer[0], b.buffer[0], c.buffer[0]), 'xyz')
  // Nothing waits any more: a read of what is there is done in the call.
  fs.writeSync(w, 'q')
  const now = pool.readFixed(r, a.index, 0, 1)
  t.is(pool.inFlightCount, 0)
  t.is(await now, 1)
  t.is(a.buffer[0], 'q'.charCodeAt(0))
})

inCallTest('epoll: a chain of awaited reads done in the call still lets timers and immediates run', async (t) => {
  using ring = new Ring({ backend: 'epoll' })
  const pool = new RegisteredBufferPool(ring, 4096, 1)
  const { fd } = cachedFile('now-chain', 1 << 20)
  t.teardown(() => fs.closeSync(fd))
  const b = pool.acquire()
  let immediateAt = -1
  let timerAt = -1
  let i = 0
  setImmediate(() => (immediateAt = i))
  setTimeout(() => (timerAt = i), 1)
  const start = Date.now()
  for (; i < 20000 && (timerAt < 0 || Date.now() - start < 20); i++) {
    t.is(await pool.readFixed(fd, b.index, (i % 256) * 4096, 4096), 4096)
  }
  // Each burst done in the call is bounded: the loop got turns all along.
  t.true(immediateAt >= 0 && immediateAt <= 200, `setImmediate ran after ${immediateAt} reads`)
  t.true(timerAt >= 0, `the 1 ms timer ran (after ${timerAt} of ${i} reads)`)
  const s = pool.stats()
  t.is(s.completed, i)
  pool.release(b.index)
})

const uringTest = probed.ioUring && forced !== 'epoll' ? test : test.skip
if (!probed.ioUring || forced === 'epoll') console.warn(`zcio: io_uring not used here (${probed.reason}): skipping the io_uring case of fixed-now`)

uringTest('io_uring: a read is always queued, in flight until it settles', async (t) => {
  using ring = new Ring({ backend: 'io_uring' })
  const pool = new RegisteredBufferPool(ring, 4096, 1)
  const { fd } = cachedFile('now-uring', 4096)
  t.teardown(() => fs.closeSync(fd))
  const b = pool.acquire()
  const p = pool.readFixed(fd, b.index, 0, 4096)
  t.is(pool.inFlightCount, 1)
  t.is(await p, 4096)
  t.is(pool.inFlightCount, 0)
  pool.release(b.index)
})

/** Both ends of a FIFO: reads of the non-blocking end wait for readiness. */
function pipe(): [number, number] {
  const path = tmpFile('now-fifo')
  fs.rmSync(path, { force: true })
  if (spawnSync('mkfifo', [path]).status !== 0) throw new Error('mkfifo failed')
  const r = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK)
  return [r, fs.openSync(path, 'w')]
}
