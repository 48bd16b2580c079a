import test from 'ava'
import * as fs from 'node:fs'
import { createRequire } from 'node:module'
const require = createRequire(import.meta.url)
import { codeOf, fixedTest, probed, rejectionCode, tmpFile, zcio } from './support.js'

const { Ring, RegisteredBufferPool } = zcio

test('probe reports without throwing', (t) => {
  const p = zcio.probe()
  t.is(typeof p.ioUring, 'boolean')
  t.is(typeof p.kernelRelease, 'string')
  for (const k of ['fixedBuffers', 'bufRing', 'bufRingIncremental', 'sendZc', 'sendZcReportUsage', 'msgZerocopy', 'nowaitFileIo'] as const) {
    t.is(typeof p[k], 'boolean', k)
  }
  if (!p.ioUring) t.truthy(p.reason)
})

fixedTest('ring: options, features, close twice', (t) => {
  const ring = new Ring({ entries: 64 })
  t.is(typeof ring.features.deferTaskrun, 'boolean')
  t.is(ring.inFlightCount, 0)
  t.false(ring.closed)
  ring.close()
  ring.close()
  t.true(ring.closed)
  t.is(codeOf(() => new Ring({ entries: 0 })), 'ERR_INVALID_ARG_VALUE')
  t.is(codeOf(() => new Ring({ entries: 65536 })), 'ERR_INVALID_ARG_VALUE')
})

fixedTest('pool: sizes that can never work are ERR_INVALID_ARG_VALUE, bad numbers ERR_OUT_OF_RANGE', (t) => {
  const ring = new Ring()
  for (const [size, count] of [
    [0, 1],
    [4096, 0],
    [4096, 16385],
    [2 ** 30 + 1, 1],
  ]) {
    const err = t.throws(() => new RegisteredBufferPool(ring, size, count), undefined, `${size}x${count}`)
    t.is((err as NodeJS.ErrnoException).code, 'ERR_INVALID_ARG_VALUE')
    t.true(err instanceof TypeError)
  }
  // As Node's fs: a negative, non-integer or NaN number is out of range.
  for (const [size, count] of [
    [4096.5, 1],
    [4096, 1.5],
    [-1, 1],
    [Number.NaN, 1],
  ]) {
    const err = t.throws(() => new RegisteredBufferPool(ring, size, count), undefined, `${size}x${count}`)
    t.is((err as NodeJS.ErrnoException).code, 'ERR_OUT_OF_RANGE')
    t.true(err instanceof RangeError)
  }
  ring.close()
  t.is(codeOf(() => new RegisteredBufferPool(ring, 4096, 1)), 'ERR_ZCIO_CLOSED')
})

fixedTest('pool: acquire, release, counts and errors', (t) => {
  const ring = new Ring()
  const pool = new RegisteredBufferPool(ring, 5000, 2)
  t.is(pool.bufferSize, 5000)
  t.is(pool.totalCount, 2)
  t.is(pool.availableCount, 2)
  const a = pool.acquire()
  t.true(a.buffer instanceof Uint8Array)
  t.is(a.buffer.length, 5000)
  t.is(pool.get(a.index), a.buffer, 'get returns the same view')
  const b = pool.tryAcquire()
  t.truthy(b)
  t.true(pool.isExhausted)
  t.is(pool.tryAcquire(), null)
  t.is(codeOf(() => pool.acquire()), 'ERR_ZCIO_POOL_EXHAUSTED')
  t.is(pool.acquiredCount, 2)
  pool.release(a.index)
  t.is(codeOf(() => pool.release(a.index)), 'ERR_ZCIO_NOT_ACQUIRED')
  t.is(codeOf(() => pool.get(a.index)), 'ERR_ZCIO_NOT_ACQUIRED')
  t.is(codeOf(() => pool.release(2)), 'ERR_OUT_OF_RANGE')
  t.is(codeOf(() => pool.release(-1)), 'ERR_OUT_OF_RANGE')
  t.is(codeOf(() => pool.release(0.5)), 'ERR_OUT_OF_RANGE')
  const s = pool.stats()
  t.like(s, { bufferSize: 5000, totalCount: 2, availableCount: 1, acquiredCount: 1, inFlightCount: 0, acquires: 2, exhausted: 2, releases: 1 })
  // Buffers are page aligned: a view starts on a page boundary of its own ArrayBuffer.
  t.is(a.buffer.byteOffset, 0)
  ring.close()
})

fixedTest('pool: in-flight marks block release and close', (t) => {
  const ring = new Ring()
  const pool = new RegisteredBufferPool(ring, 4096, 2)
  const { index } = pool.acquire()
  pool.markInFlight(index)
  t.is(pool.inFlightCount, 1)
  t.is(pool.get(index).length, 4096, 'get works while in flight')
  t.is(codeOf(() => pool.markInFlight(index)), 'ERR_ZCIO_BUFFER_IN_FLIGHT')
  t.is(codeOf(() => pool.release(index)), 'ERR_ZCIO_BUFFER_IN_FLIGHT')
  t.is(codeOf(() => pool.close()), 'ERR_ZCIO_BUFFER_IN_FLIGHT')
  pool.completeInFlight(index)
  t.is(codeOf(() => pool.completeInFlight(index)), 'ERR_ZCIO_NOT_IN_FLIGHT')
  t.is(codeOf(() => pool.markInFlight(1)), 'ERR_ZCIO_NOT_ACQUIRED')
  pool.release(index)
  pool.close()
  pool.close()
  t.true(pool.closed)
  t.is(codeOf(() => pool.acquire()), 'ERR_ZCIO_CLOSED')
  ring.close()
})

fixedTest('writeFixed then readFixed at random offsets, byte for byte', async (t) => {
  const ring = new Ring()
  const pool = new RegisteredBufferPool(ring, 65536, 8)
  const file = tmpFile('rw')
  const fd = fs.openSync(file, 'w+')
  const size = 1 << 20
  const expected = Buffer.alloc(size)
  // Fill the file through writeFixed, 64 KiB at a time, 4 writes in flight.
  const bufs = [0, 1, 2, 3].map(() => pool.acquire())
  for (let off = 0; off < size; off += 4 * 65536) {
    await Promise.all(
      bufs.map(async (b, k) => {
        const at = off + k * 65536
        for (let i = 0; i < 65536; i++) b.buffer[i] = (at + i * 7 + (at >> 16)) & 0xff
        expected.set(b.buffer, at)
        t.is(await pool.writeFixed(fd, b.index, at, 65536), 65536)
      }),
    )
  }
  t.deepEqual(fs.readFileSync(file), expected)
  // Random reads, lengths and buffer offsets.
  const r = pool.acquire()
  for (let i = 0; i < 200; i++) {
    const len = 1 + Math.floor(Math.random() * 30000)
    const off = Math.floor(Math.random() * (size - len))
    const boff = Math.floor(Math.random() * (65536 - len))
    t.is(pool.inFlightCount, 0)
    const p = pool.readFixed(fd, r.index, off, len, boff)
    if (pool.inFlightCount === 1) t.is(codeOf(() => pool.release(r.index)), 'ERR_ZCIO_BUFFER_IN_FLIGHT')
    // Not in flight: done in the call, which only epoll does (a page-cache hit).
    else t.is(ring.backend, 'epoll')
    t.is(await p, len)
    if (Buffer.compare(Buffer.from(r.buffer.subarray(boff, boff + len)), expected.subarray(off, off + len)) !== 0) {
      t.fail(`mismatch at file offset ${off}, len ${len}`)
    }
  }
  // Reading past the end returns 0.
  t.is(await pool.readFixed(fd, r.index, size, 100), 0)
  t.like(pool.stats(), { inFlightCount: 0, kernelOpCount: 0, failed: 0 })
  fs.closeSync(fd)
  ring.close()
})

fixedTest('kernel errors are Node-style', async (t) => {
  const ring = new Ring()
  const pool = new RegisteredBufferPool(ring, 4096, 1)
  const { index } = pool.acquire()
  const err = await t.throwsAsync(pool.readFixed(987654, index, 0, 10))
  t.like(err as NodeJS.ErrnoException, { code: 'EBADF', errno: -9, syscall: 'read' })
  t.regex(err!.message, /^EBADF: bad file descriptor, read/)
  const dir = fs.openSync(tmpFile('x').replace(/x$/, ''), 'r')
  const eisdir = await t.throwsAsync(pool.readFixed(dir, index, 0, 10))
  t.is((eisdir as NodeJS.ErrnoException).code, 'EISDIR')
  t.is(pool.stats().failed, 2)
  t.is(pool.inFlightCount, 0, 'a failed operation gives the buffer back')
  ring.close()
})

fixedTest('range errors are ERR_OUT_OF_RANGE, reject, and queue nothing', async (t) => {
  const ring = new Ring()
  const pool = new RegisteredBufferPool(ring, 4096, 2)
  const { index } = pool.acquire()
  for (const args of [
    [0, index, 0, 4097],
    [0, index, 0, 1, 4096],
    [0, index, 0, 4000, 100],
    [0, index, -1, 1],
    [0, index, 1.5, 1],
    [0, 5, 0, 1],
  ] as const) {
    const err = await t.throwsAsync((pool.readFixed as (...a: number[]) => Promise<number>)(...args))
    t.is((err as NodeJS.ErrnoException).code, 'ERR_OUT_OF_RANGE', JSON.stringify(args))
    t.true(err instanceof RangeError)
  }
  t.is(await rejectionCode(pool.readFixed(0, 1, 0, 1)), 'ERR_ZCIO_NOT_ACQUIRED')
  t.is(ring.inFlightCount, 0)
  t.is(pool.inFlightCount, 0)
  ring.close()
})

fixedTest('batch reads and writes', async (t) => {
  const ring = new Ring()
  const pool = new RegisteredBufferPool(ring, 4096, 16)
  const file = tmpFile('batch')
  const fd = fs.openSync(file, 'w+')
  const idx = new Uint32Array(16)
  for (let i = 0; i < 16; i++) {
    const b = pool.acquire()
    idx[i] = b.index
    b.buffer.fill(i + 1)
  }
  const offsets = Float64Array.from({ length: 16 }, (_, i) => i * 4096)
  const lens = new Uint32Array(16).fill(4096)
  const w = await pool.writeFixedBatch(fd, idx, offsets, lens)
  t.true(w instanceof Int32Array)
  t.deepEqual([...w], new Array(16).fill(4096))
  for (const i of idx) pool.get(i).fill(0)
  // Read them back reversed, and one element past the end of the file.
  const roffs = Float64Array.from({ length: 16 }, (_, i) => (15 - i) * 4096)
  roffs[0] = 16 * 4096
  const r = await pool.readFixedBatch(fd, idx, roffs, lens)
  t.is(r[0], 0)
  for (let i = 1; i < 16; i++) {
    t.is(r[i], 4096)
    t.true(pool.get(idx[i]).every((v) => v === 16 - i))
  }
  // Per-element kernel errors come back as -errno.
  const bad = await pool.readFixedBatch(987654, idx.subarray(0, 2), roffs.subarray(0, 2), lens.subarray(0, 2))
  t.deepEqual([...bad], [-9, -9])
  // Argument errors reject before anything is queued.
  t.is(await rejectionCode(pool.readFixedBatch(fd, idx, roffs.subarray(0, 3), lens)), 'ERR_INVALID_ARG_VALUE')
  t.is(await rejectionCode(pool.readFixedBatch(fd, new Uint32Array(0), new Float64Array(0), new Uint32Array(0))), 'ERR_INVALID_ARG_VALUE')
  const tooLong = lens.slice()
  tooLong[15] = 5000
  t.is(await rejectionCode(pool.readFixedBatch(fd, idx, roffs, tooLong)), 'ERR_OUT_OF_RANGE')
  pool.release(idx[3])
  t.is(await rejectionCode(pool.readFixedBatch(fd, idx, roffs, lens)), 'ERR_ZCIO_NOT_ACQUIRED')
  t.is(ring.inFlightCount, 0)
  fs.closeSync(fd)
  ring.close()
})

fixedTest('low level: submitReadFixed, completions, completeInFlight', async (t) => {
  const ring = new Ring()
  const pool = new RegisteredBufferPool(ring, 4096, 2)
  const file = tmpFile('low')
  fs.writeFileSync(file, 'low level data')
  const fd = fs.openSync(file, 'r')
  const { index, buffer } = pool.acquire()
  const ud = pool.submitReadFixed(fd, index, 4, 5)
  t.is(typeof ud, 'bigint')
  t.is(ring.inFlightCount, 1)
  const done = await ring.completions()
  t.is(done.length, 1)
  t.like(done[0], { userData: ud, result: 5, bufferIndex: index, op: 'read' })
  t.is(Buffer.from(buffer.subarray(0, 5)).toString(), 'level')
  t.is(codeOf(() => pool.release(index)), 'ERR_ZCIO_BUFFER_IN_FLIGHT', 'stays in flight until completed')
  pool.completeInFlight(index)
  pool.release(index)
  t.deepEqual(ring.takeCompletions(), [])
  t.deepEqual(await ring.completions(), [], 'nothing in flight: resolves at once')
  const b = pool.acquire()
  b.buffer.set(Buffer.from('WRITE'))
  const wfd = fs.openSync(file, 'r+')
  pool.submitWriteFixed(wfd, b.index, 0, 5)
  t.is(ring.submit(), 1)
  const w = await ring.completions()
  t.like(w[0], { result: 5, op: 'write' })
  pool.completeInFlight(b.index)
  t.is(fs.readFileSync(file, 'utf8'), 'WRITEevel data')
  ring.close()
})

fixedTest('close detaches every view', async (t) => {
  const ring = new Ring()
  const pool = new RegisteredBufferPool(ring, 4096, 2)
  const a = pool.acquire()
  a.buffer[0] = 1
  pool.release(a.index)
  pool.close()
  t.is(a.buffer.length, 0)
  t.is(a.buffer.byteLength, 0)
  a.buffer[0] = 7 // ignored by the engine: the buffer is detached
  t.is(a.buffer[0] as number | undefined, undefined)
  // Ring close detaches the views of its pools, even acquired ones.
  const pool2 = new RegisteredBufferPool(ring, 4096, 2)
  const b = pool2.acquire()
  ring.close()
  t.is(b.buffer.length, 0)
  t.true(pool2.closed)
  t.is(codeOf(() => pool2.acquire()), 'ERR_ZCIO_CLOSED')
})

fixedTest('ring close cancels operations in flight', async (t) => {
  const ring = new Ring()
  const pool = new RegisteredBufferPool(ring, 4096, 1)
  const { index } = pool.acquire()
  // A FIFO nobody writes to: the read can only end by cancellation.
  const fifo = tmpFile('fifo')
  require('node:child_process').execFileSync('mkfifo', [fifo])
  const fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK)
  const p = pool.readFixed(fd, index, 0, 4096)
  await new Promise((r) => setTimeout(r, 50))
  t.is(ring.inFlightCount, 1)
  ring.close()
  const err = await t.throwsAsync(p)
  t.is((err as NodeJS.ErrnoException).code, 'ECANCELED')
  t.is(ring.inFlightCount, 0)
  fs.closeSync(fd)
})

void probed
