import test from 'ava'
import * as fs from 'node:fs'
import { inspect } from 'node:util'
import { pathToFileURL } from 'node:url'
import { spawnSync } from 'node:child_process'
import { codeOf, fixedTest, probed, rejectionCode, root, tmpFile, zcio } from './support.js'

const { Ring, RegisteredBufferPool } = zcio

test('the package exports the layer, not the binding internals', (t) => {
  t.deepEqual(Object.keys(zcio).sort(), ['BufferGroup', 'RegisteredBufferPool', 'Ring', 'TcpListener', 'TcpStream', 'ZeroCopyBufferManager', 'net', 'probe', 'rdma', 'sendZcBatch'])
  t.false('__napiBindingTarget' in zcio)
})

test('import() and require() give the same classes', async (t) => {
  const esm = (await import(pathToFileURL(`${root}/index.mjs`).href)) as typeof zcio
  t.is(esm.Ring, zcio.Ring)
  t.is(esm.RegisteredBufferPool, zcio.RegisteredBufferPool)
  t.is(typeof esm.probe, 'function')
  t.is(esm.net, zcio.net)
  const sub = (await import(pathToFileURL(`${root}/net.mjs`).href)) as typeof zcio.net & { default: typeof zcio.net }
  t.is(sub.default, zcio.net)
  t.is(sub.Socket, zcio.net.Socket)
  t.is(sub.createServer, zcio.net.createServer)
})

test('classes called without new throw a TypeError', (t) => {
  const call = (f: unknown, ...args: unknown[]) => (f as (...a: unknown[]) => unknown)(...args)
  t.throws(() => call(Ring), { instanceOf: TypeError })
  t.throws(() => call(RegisteredBufferPool, {}, 4096, 1), { instanceOf: TypeError })
  t.throws(() => Reflect.apply(Ring.prototype.close, {}, []), { instanceOf: TypeError })
})

test('ring options are checked like Node checks fs arguments', (t) => {
  const bad: [unknown, string][] = [
    [5, 'ERR_INVALID_ARG_TYPE'],
    ['x', 'ERR_INVALID_ARG_TYPE'],
    [null, 'ERR_INVALID_ARG_TYPE'],
    [{ entries: '8' }, 'ERR_INVALID_ARG_TYPE'],
    [{ entries: 8n }, 'ERR_INVALID_ARG_TYPE'],
    [{ entries: 1.5 }, 'ERR_OUT_OF_RANGE'],
    [{ entries: -1 }, 'ERR_OUT_OF_RANGE'],
    [{ entries: Number.NaN }, 'ERR_OUT_OF_RANGE'],
    [{ entries: 0 }, 'ERR_INVALID_ARG_VALUE'],
    [{ entries: 40000 }, 'ERR_INVALID_ARG_VALUE'],
    [{ sqpoll: 'yes' }, 'ERR_INVALID_ARG_TYPE'],
    [{ sqpoll: -5 }, 'ERR_OUT_OF_RANGE'],
    [{ backend: 5 }, 'ERR_INVALID_ARG_TYPE'],
    [{ backend: 'uring' }, 'ERR_INVALID_ARG_VALUE'],
    [{ backend: 'EPOLL' }, 'ERR_INVALID_ARG_VALUE'],
    [{ workers: '4' }, 'ERR_INVALID_ARG_TYPE'],
    [{ workers: 0 }, 'ERR_OUT_OF_RANGE'],
    [{ workers: 65 }, 'ERR_OUT_OF_RANGE'],
    [{ workers: 1.5 }, 'ERR_OUT_OF_RANGE'],
  ]
  for (const [options, code] of bad) {
    t.is(codeOf(() => new Ring(options as never)), code, inspect(options))
  }
  const err = t.throws(() => new Ring({ entries: '8' } as never))
  t.is(err!.message, `The "options.entries" property must be of type number. Received type string ('8')`)
  const range = t.throws(() => new Ring({ entries: -1 }))
  t.is(range!.message, 'The value of "options.entries" is out of range. It must be >= 0 && <= 4294967295. Received -1')
  const backend = t.throws(() => new Ring({ backend: 'uring' as never }))
  t.is(backend!.message, `The property 'options.backend' must be one of: 'auto', 'io_uring', 'epoll'. Received 'uring'`)
  const backendType = t.throws(() => new Ring({ backend: 5 as never }))
  t.is(backendType!.message, 'The "options.backend" property must be of type string. Received type number (5)')
  const workers = t.throws(() => new Ring({ workers: 0 }))
  t.is(workers!.message, 'The value of "options.workers" is out of range. It must be >= 1 && <= 64. Received 0')
  // Options are checked before the ring is made: valid ones reach the kernel,
  // which without io_uring (and io_uring forced) is ERR_ZCIO_URING_UNAVAILABLE.
  if (probed.ioUring || probed.backend === 'epoll') new Ring({ entries: 8, sqpoll: false, workers: 1 }).close()
  else t.is(codeOf(() => new Ring({ entries: 8, sqpoll: false })), 'ERR_ZCIO_URING_UNAVAILABLE')
})

fixedTest('fd and every integer argument are validated; promise methods reject, never throw', async (t) => {
  using ring = new Ring()
  const pool = new RegisteredBufferPool(ring, 4096, 2)
  const { index } = pool.acquire()
  const cases: [unknown[], string][] = [
    [[Number.NaN, index, 0, 1], 'ERR_OUT_OF_RANGE'],
    [[Infinity, index, 0, 1], 'ERR_OUT_OF_RANGE'],
    [[-Infinity, index, 0, 1], 'ERR_OUT_OF_RANGE'],
    [[1e300, index, 0, 1], 'ERR_OUT_OF_RANGE'],
    [[2 ** 32, index, 0, 1], 'ERR_OUT_OF_RANGE'],
    [[2 ** 32 + 1, index, 0, 1], 'ERR_OUT_OF_RANGE'],
    [[2 ** 31, index, 0, 1], 'ERR_OUT_OF_RANGE'],
    [[-1, index, 0, 1], 'ERR_OUT_OF_RANGE'],
    [['1', index, 0, 1], 'ERR_INVALID_ARG_TYPE'],
    [[1n, index, 0, 1], 'ERR_INVALID_ARG_TYPE'],
    [[1, '0', 0, 1], 'ERR_INVALID_ARG_TYPE'],
    [[1, index, 0n, 1], 'ERR_INVALID_ARG_TYPE'],
    [[1, index, 2 ** 53, 1], 'ERR_OUT_OF_RANGE'],
    [[1, index, 0, null], 'ERR_INVALID_ARG_TYPE'],
    [[1, index, 0, 1, 'x'], 'ERR_INVALID_ARG_TYPE'],
    [[1, index, 0, 1, -1], 'ERR_OUT_OF_RANGE'],
  ]
  for (const [args, code] of cases) {
    for (const method of ['readFixed', 'writeFixed'] as const) {
      let p: Promise<number> | undefined
      t.notThrows(() => {
        p = (pool[method] as (...a: unknown[]) => Promise<number>)(...args)
      })
      t.true(p instanceof Promise)
      t.is(await rejectionCode(p!), code, `${method}(${args.map((a) => inspect(a)).join(', ')})`)
    }
    t.is(codeOf(() => (pool.submitReadFixed as (...a: unknown[]) => bigint)(...args)), code)
  }
  // Nothing reached the kernel; in particular nothing was written to fd 1.
  t.is(ring.inFlightCount, 0)
  t.is(pool.stats().submitted, 0)
  const msg = await pool.readFixed(2 ** 32 + 1, index, 0, 17).catch((e: Error) => e.message)
  t.is(msg, 'The value of "fd" is out of range. It must be >= 0 && <= 2147483647. Received 4294967297')
  // State errors reject too.
  t.is(await rejectionCode(pool.readFixed(0, 1, 0, 1)), 'ERR_ZCIO_NOT_ACQUIRED')
  t.is(await rejectionCode(pool.readFixedBatch(0, [0] as never, new Float64Array(1), new Uint32Array(1))), 'ERR_INVALID_ARG_TYPE')
  for (const bad of ['0', -1, 1.5, 2 ** 33]) {
    t.truthy(codeOf(() => pool.release(bad as number)), inspect(bad))
    t.truthy(codeOf(() => pool.get(bad as number)), inspect(bad))
  }
  t.is(codeOf(() => new RegisteredBufferPool({} as never, 4096, 1)), 'ERR_INVALID_ARG_TYPE')
  t.is(codeOf(() => new RegisteredBufferPool(ring, '4096' as never, 1)), 'ERR_INVALID_ARG_TYPE')
})

fixedTest('a promise never gets another operation\'s result (slot reuse during settling)', async (t) => {
  // An operation queued synchronously while completions are being settled
  // (here from a promise hook) must not take the slot of a completion that
  // has not been settled yet.
  const file = tmpFile('hook')
  fs.writeFileSync(file, 'x'.repeat(4096))
  const r = spawnSync(
    process.execPath,
    [
      '-e',
      `
      const v8 = require('v8'); const fs = require('fs')
      const z = require(${JSON.stringify(root)})
      const fd = fs.openSync(${JSON.stringify(file)}, 'r')
      const ring = new z.Ring(); const pool = new z.RegisteredBufferPool(ring, 4096, 8)
      let armed = true, inner
      const stop = v8.promiseHooks.onSettled(() => {
        if (armed) { armed = false; inner = pool.readFixed(fd, pool.acquire().index, 0, 10).then((n) => n, (e) => e.code) }
      })
      const outer = [0, 1, 2].map(() => pool.readFixed(987654, pool.acquire().index, 0, 10).then((n) => n, (e) => e.code))
      const timer = setTimeout(() => { console.log('hang'); process.exit(1) }, 5000)
      Promise.all(outer).then(async (o) => { stop(); console.log(JSON.stringify({ outer: o, inner: await inner })); clearTimeout(timer) })
      `,
    ],
    { encoding: 'utf8', timeout: 30_000 },
  )
  t.is(r.status, 0, r.stdout + r.stderr)
  t.deepEqual(JSON.parse(r.stdout), { outer: ['EBADF', 'EBADF', 'EBADF'], inner: 10 })
})

fixedTest('an Object.prototype setter that throws while errors are built settles every promise', async (t) => {
  const ring = new Ring()
  const pool = new RegisteredBufferPool(ring, 4096, 4)
  const desc = Object.getOwnPropertyDescriptor(Object.prototype, 'syscall')
  const errors: unknown[] = []
  const onUncaught = (e: unknown) => errors.push(e)
  process.on('uncaughtException', onUncaught)
  Object.defineProperty(Object.prototype, 'syscall', {
    configurable: true,
    set() {
      throw new Error('hostile setter')
    },
  })
  try {
    const ps = [0, 1, 2].map(() => pool.readFixed(987654, pool.acquire().index, 0, 10).then(() => 'ok', (e: Error) => e.message))
    const results = await Promise.race([Promise.all(ps), new Promise((r) => setTimeout(() => r('hang'), 3000))])
    t.deepEqual(results, ['hostile setter', 'hostile setter', 'hostile setter'])
    t.deepEqual(errors, [])
  } finally {
    if (desc) Object.defineProperty(Object.prototype, 'syscall', desc)
    else delete (Object.prototype as { syscall?: unknown }).syscall
    process.off('uncaughtException', onUncaught)
    ring.close()
  }
})

fixedTest('Symbol.dispose closes; util.inspect shows state and counts', (t) => {
  let seen: InstanceType<typeof Ring> | undefined
  let pool: InstanceType<typeof RegisteredBufferPool> | undefined
  {
    using ring = new Ring()
    seen = ring
    using p = new RegisteredBufferPool(ring, 4096, 3)
    pool = p
    p.acquire()
    t.regex(inspect(ring), /^Ring \{\s+backend: '(io_uring|epoll)',\s+inFlightCount: 0,\s+closed: false,\s+features: \{/)
    t.regex(inspect(p), /RegisteredBufferPool \{[^}]*bufferSize: 4096,[^}]*totalCount: 3,[^}]*availableCount: 2,[^}]*acquiredCount: 1/)
    p.release(0)
  }
  t.true(seen.closed)
  t.true(pool.closed)
  t.regex(inspect(seen), /closed: true/)
  t.regex(inspect(seen), /backend: '(io_uring|epoll)'/)
})

fixedTest('counts are live, without a call per read', async (t) => {
  using ring = new Ring()
  const pool = new RegisteredBufferPool(ring, 4096, 4)
  const file = tmpFile('counts')
  fs.writeFileSync(file, 'abc')
  const fd = fs.openSync(file, 'r')
  const a = pool.acquire()
  t.like(pool, { totalCount: 4, availableCount: 3, acquiredCount: 1, inFlightCount: 0, isExhausted: false })
  const p = pool.readFixed(fd, a.index, 0, 3)
  // epoll does a page-cache hit in the call (where preadv2 takes
  // RWF_NOWAIT); io_uring always queues.
  const queued = ring.backend === 'io_uring' || !probed.nowaitFileIo ? 1 : 0
  t.is(pool.inFlightCount, queued)
  t.is(pool.acquiredCount, 1 - queued)
  t.is(ring.inFlightCount, queued)
  t.is(await p, 3)
  t.is(pool.inFlightCount, 0)
  t.is(ring.inFlightCount, 0)
  t.like(pool.stats(), { submitted: 1, completed: 1, failed: 0, acquires: 1 })
  fs.closeSync(fd)
})

test('on a platform other than Linux, loading throws ERR_ZCIO_UNSUPPORTED_PLATFORM before touching the addon', (t) => {
  const r = spawnSync(
    process.execPath,
    [
      '-e',
      `Object.defineProperty(process, 'platform', { value: 'darwin' })
       try { require(${JSON.stringify(root)}); console.log('loaded') } catch (e) { console.log(e.code, e.message) }
       console.log(Object.keys(require.cache).some((f) => f.endsWith('.node')) ? 'addon loaded' : 'no addon')`,
    ],
    { encoding: 'utf8' },
  )
  t.is(r.status, 0, r.stderr)
  t.regex(r.stdout, /^ERR_ZCIO_UNSUPPORTED_PLATFORM zcio needs Linux \(io_uring\); this is darwin-/)
  t.regex(r.stdout, /no addon/)
})
