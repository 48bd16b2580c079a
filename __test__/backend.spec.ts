// Choosing the backend: `new Ring({ backend })`, `ring.backend`, the option
// only io_uring can honour (sqpoll), refused on epoll with
// ERR_ZCIO_UNSUPPORTED, and busy polling, which works on both.

import test from 'ava'
import * as fs from 'node:fs'
import { spawnSync } from 'node:child_process'
import { inspect } from 'node:util'
import { probed, zcio } from './support.js'

const { Ring, RegisteredBufferPool } = zcio

/** What ZCIO_BACKEND forces for this process ('' when nothing). */
const forced = process.env.ZCIO_BACKEND === 'auto' ? '' : (process.env.ZCIO_BACKEND ?? '')
/** A ring asking for epoll gets it unless ZCIO_BACKEND=io_uring overrides. */
const epollTest = forced === 'io_uring' ? test.skip : test
if (forced === 'io_uring') console.warn('zcio: ZCIO_BACKEND=io_uring: skipping the tests of epoll rings')

test('a default ring runs on the backend probe() names, and inspect shows it', (t) => {
  using ring = new Ring({ entries: 8 })
  t.is(ring.backend, probed.backend)
  t.is(ring.backend, zcio.probe().backend)
  t.true(inspect(ring).includes(`backend: '${ring.backend}'`), inspect(ring))
})

epollTest('backend: epoll gives an epoll ring, workers accepted', (t) => {
  using ring = new Ring({ entries: 8, backend: 'epoll', workers: 2 })
  t.is(ring.backend, 'epoll')
  t.true(inspect(ring).includes("backend: 'epoll'"))
})

const uringTest = probed.ioUring && forced !== 'epoll' ? test : test.skip
if (!probed.ioUring || forced === 'epoll') {
  console.warn(`zcio: io_uring not used here (${probed.reason}): skipping the test of backend: 'io_uring'`)
}

uringTest("backend: 'io_uring' and 'auto' give io_uring where it is usable", (t) => {
  using a = new Ring({ entries: 8, backend: 'io_uring' })
  using b = new Ring({ entries: 8, backend: 'auto' })
  t.is(a.backend, 'io_uring')
  t.is(b.backend, 'io_uring')
})

epollTest('sqpoll on an epoll ring throws ERR_ZCIO_UNSUPPORTED naming the backend', (t) => {
  const err = t.throws(() => new Ring({ entries: 8, backend: 'epoll', sqpoll: 10 })) as NodeJS.ErrnoException
  t.is(err.code, 'ERR_ZCIO_UNSUPPORTED')
  t.regex(err.message, /sqpoll.*epoll backend/)
})

epollTest('busyPoll works on an epoll ring: it spins on the epoll instance', async (t) => {
  using ring = new Ring({ entries: 8, backend: 'epoll', busyPoll: 50 })
  t.is(ring.busyPoll, 50)
  ring.busyPoll = 10
  t.is(ring.busyPoll, 10)
  // A read completes with busy polling on, as without.
  const pool = new RegisteredBufferPool(ring, 4096, 1)
  const b = pool.acquire()
  const fd = fs.openSync('/dev/zero', 'r')
  try {
    t.is(await pool.readFixed(fd, b.index, 0, 512), 512)
  } finally {
    fs.closeSync(fd)
  }
  ring.busyPoll = 0
  t.is(ring.busyPoll, 0)
})

test('probe().memlockNeeded says whether pools count against RLIMIT_MEMLOCK: on io_uring only', (t) => {
  const p = zcio.probe()
  t.is(p.memlockNeeded, p.backend === 'io_uring')
})

// The epoll backend registers nothing with the kernel: a pool far larger
// than RLIMIT_MEMLOCK works (run in a child whose limit prlimit(1) lowers).
const prlimit = ['/usr/bin/prlimit', '/bin/prlimit'].find((p) => fs.existsSync(p))
if (!prlimit) console.warn('zcio: prlimit(1) not found: skipping the RLIMIT_MEMLOCK test of epoll pools')
;(prlimit && forced !== 'io_uring' ? test : test.skip)('an epoll pool larger than RLIMIT_MEMLOCK works, and probe() says it needs none', (t) => {
  const script = `
    const zcio = require(${JSON.stringify(new URL('../../index.js', import.meta.url).pathname)})
    const ring = new zcio.Ring({ backend: 'epoll' })
    const pool = new zcio.RegisteredBufferPool(ring, 1 << 20, 4)
    const p = zcio.probe()
    console.log(JSON.stringify({ size: pool.bufferSize * pool.totalCount, needed: p.memlockNeeded, limit: p.memlockLimit }))
    ring.close()`
  const r = spawnSync(prlimit!, ['--memlock=65536:65536', process.execPath, '-e', script], {
    env: { ...process.env, ZCIO_BACKEND: 'epoll' },
    encoding: 'utf8',
  })
  t.is(r.status, 0, r.stderr)
  const out = JSON.parse(r.stdout.trim()) as { size: number; needed: boolean; limit: number }
  t.is(out.limit, 65536)
  t.is(out.size, 4 << 20)
  t.false(out.needed)
})
