import test from 'ava'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { MessageChannel, Worker } from 'node:worker_threads'
import { can, directSupported, fixedTest, root, tmpFile, zcio } from './support.js'

const { Ring, RegisteredBufferPool } = zcio

/** Runs a CommonJS snippet in a fresh Node process with zcio loaded as `z`. */
function runChild(code: string, args: string[] = []) {
  const script = `const z = require(${JSON.stringify(root)});\n${code}`
  return spawnSync(process.execPath, [...args, '-e', script], { encoding: 'utf8', timeout: 60_000 })
}

fixedTest('a script that does I/O exits by itself, without close()', (t) => {
  const file = tmpFile('exit')
  fs.writeFileSync(file, 'x'.repeat(10000))
  const started = Date.now()
  const r = runChild(`
    const fd = require('fs').openSync(${JSON.stringify(file)}, 'r')
    const ring = new z.Ring()
    const pool = new z.RegisteredBufferPool(ring, 4096, 4)
    const a = pool.acquire()
    pool.readFixed(fd, a.index, 0, 4096).then((n) => console.log('read', n))
    pool.readFixedBatch(fd, new Uint32Array([a.index]), new Float64Array([4096]), new Uint32Array([100]))
      .then((r) => console.log('batch', r[0]))
  `)
  t.is(r.status, 0, r.stderr)
  t.regex(r.stdout, /read 4096/)
  t.regex(r.stdout, /batch 100/)
  t.true(Date.now() - started < 30_000)
})

fixedTest('a pending read keeps the process alive until it completes', (t) => {
  const r = runChild(`
    const { execFileSync } = require('child_process')
    const fs = require('fs')
    const fifo = require('os').tmpdir() + '/zcio-alive-' + process.pid
    execFileSync('mkfifo', [fifo])
    const fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK)
    const ring = new z.Ring()
    const pool = new z.RegisteredBufferPool(ring, 4096, 1)
    const a = pool.acquire()
    pool.readFixed(fd, a.index, 0, 4096).then((n) => {
      console.log('got', n, Buffer.from(a.buffer.subarray(0, n)).toString())
      fs.unlinkSync(fifo)
    })
    // Nothing else keeps the loop alive: an unref'd timer writes later.
    setTimeout(() => fs.writeSync(fd, 'ping'), 200).unref()
  `)
  t.is(r.status, 0, r.stderr)
  t.regex(r.stdout, /got 4 ping/)
})

/** A child's prelude: a FIFO opened both ways (`fd`, nothing buffered, unlinked), a ring and a pool with one buffer `a` acquired. */
const FIFO_POOL = `
    const fs = require('fs')
    const fifo = require('os').tmpdir() + '/zcio-fifo-' + process.pid
    require('child_process').execFileSync('mkfifo', [fifo])
    const fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK)
    fs.unlinkSync(fifo)
    const ring = new z.Ring()
    const pool = new z.RegisteredBufferPool(ring, 4096, 1)
    const a = pool.acquire()`

fixedTest('an unref()ed ring lets the process exit with a read pending; ref() holds it again', (t) => {
  const r = runChild(`
    ${FIFO_POOL}
    if (ring.unref() !== ring || ring.hasRef()) throw new Error('unref() returns the ring, hasRef() is false')
    // Held by nothing: the process exits with this read pending.
    pool.readFixed(fd, a.index, 0, 4096).then(() => console.log('read a'))
    process.on('exit', () => console.log('exit, ref', ring.hasRef()))
  `)
  t.is(r.status, 0, r.stderr)
  t.is(r.stdout, 'exit, ref false\n', 'the pending read did not hold the process')
  const held = runChild(`
    ${FIFO_POOL}
    ring.unref()
    pool.readFixed(fd, a.index, 0, 4096).then((n) => console.log('got', n))
    ring.ref()
    setTimeout(() => fs.writeSync(fd, 'ping'), 200).unref()
  `)
  t.is(held.status, 0, held.stderr)
  t.is(held.stdout, 'got 4\n')
})

fixedTest('dropping pool and ring mid-flight, then forced GC, does not crash', (t) => {
  const r = runChild(
    `
    const { execFileSync } = require('child_process')
    const fs = require('fs')
    const fifo = require('os').tmpdir() + '/zcio-gc-' + process.pid
    execFileSync('mkfifo', [fifo])
    const fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK)
    let views = []
    ;(function () {
      const ring = new z.Ring()
      const pool = new z.RegisteredBufferPool(ring, 65536, 8)
      for (let i = 0; i < 8; i++) {
        const a = pool.acquire()
        views.push(a.buffer)
        pool.readFixed(fd, a.index, 0, 65536).then((n) => console.log('late read', n), (e) => console.log('err', e.code))
      }
    })()
    for (let i = 0; i < 5; i++) global.gc()
    setTimeout(() => {
      for (let i = 0; i < 5; i++) global.gc()
      // The kernel still owns the buffers: complete the reads now, one write
      // per pending read.
      let n = 0
      const feed = setInterval(() => {
        fs.writeSync(fd, Buffer.alloc(100, 65 + n))
        if (++n === 8) clearInterval(feed)
      }, 30)
      setTimeout(() => {
        for (let i = 0; i < 5; i++) global.gc()
        // Views kept after their pool went away still work (memory is alive).
        console.log('view', views[0].length, views.every((v) => v.length === 65536))
        views = null
        for (let i = 0; i < 5; i++) global.gc()
        fs.unlinkSync(fifo)
      }, 400)
    }, 100)
  `,
    ['--expose-gc'],
  )
  t.is(r.status, 0, r.stderr)
  t.is((r.stdout.match(/late read 100/g) ?? []).length, 8, r.stdout)
  t.regex(r.stdout, /view 65536 true/)
})

fixedTest('views kept after close() are detached, not dangling', (t) => {
  const r = runChild(
    `
    const ring = new z.Ring()
    const pool = new z.RegisteredBufferPool(ring, 1 << 20, 4)
    const views = [0, 1, 2, 3].map(() => pool.acquire().buffer)
    ring.close()
    for (let i = 0; i < 5; i++) global.gc()
    let threw = 0
    for (const v of views) {
      v[0] = 1 // ignored: out of bounds of a detached buffer
      try { v.fill(1) } catch (e) { if (e instanceof TypeError) threw++ }
    }
    console.log('lengths', views.map((v) => v.length).join(','), 'threw', threw)
  `,
    ['--expose-gc'],
  )
  t.is(r.status, 0, r.stderr)
  t.regex(r.stdout, /lengths 0,0,0,0 threw 4/)
})

fixedTest('rings work in worker threads, one per thread', async (t) => {
  const file = tmpFile('worker')
  fs.writeFileSync(file, 'worker data')
  const code = `
    const { parentPort, workerData } = require('worker_threads')
    const z = require(workerData.root)
    const fd = require('fs').openSync(workerData.file, 'r')
    const ring = new z.Ring()
    const pool = new z.RegisteredBufferPool(ring, 4096, 2)
    const a = pool.acquire()
    pool.readFixed(fd, a.index, 0, 11).then((n) => {
      parentPort.postMessage(Buffer.from(a.buffer.subarray(0, n)).toString())
      // left open on purpose: worker teardown must clean up
    })
  `
  const results = await Promise.all(
    [0, 1, 2].map(
      () =>
        new Promise<string>((resolve, reject) => {
          const w = new Worker(code, { eval: true, workerData: { root, file } })
          w.once('message', (m) => {
            resolve(m)
            void w.terminate()
          })
          w.once('error', reject)
        }),
    ),
  )
  t.deepEqual(results, ['worker data', 'worker data', 'worker data'])
})

fixedTest('a ring cannot be handed to another thread', async (t) => {
  const ring = new Ring()
  const pool = new RegisteredBufferPool(ring, 4096, 1)
  // Structured clone (what postMessage uses) copies no native state: the
  // copy is a plain object, and using it as a ring or pool throws.
  const { port1, port2 } = new MessageChannel()
  const received = new Promise<unknown>((resolve) => port2.once('message', resolve))
  port1.postMessage({ ring, pool })
  const copy = (await received) as { ring: object; pool: object }
  t.false(copy.ring instanceof Ring)
  t.throws(() => Ring.prototype.close.call(copy.ring))
  t.throws(() => RegisteredBufferPool.prototype.acquire.call(copy.pool))
  t.is(pool.acquire().index, 0, 'the original still works')
  port1.close()
  port2.close()
  ring.close()
})

const directTest = can('fixedBuffers') && directSupported() ? fixedTest : test.skip
if (!directSupported()) console.warn('zcio: O_DIRECT unsupported on the temp directory: skipping the O_DIRECT test')

directTest('O_DIRECT reads and writes with page-aligned buffers', async (t) => {
  const ring = new Ring()
  const pool = new RegisteredBufferPool(ring, 8192, 2)
  const file = tmpFile('direct')
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_DIRECT)
  const a = pool.acquire()
  for (let i = 0; i < 8192; i++) a.buffer[i] = i % 251
  t.is(await pool.writeFixed(fd, a.index, 8192, 8192), 8192)
  const b = pool.acquire()
  t.is(await pool.readFixed(fd, b.index, 8192, 8192), 8192)
  t.deepEqual(Buffer.from(b.buffer), Buffer.from(a.buffer))
  fs.closeSync(fd)
  ring.close()
})

void path
