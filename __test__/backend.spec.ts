// Choosing the backend: `new Ring({ backend })`, `ring.backend`, and the
// options only io_uring can honour, refused on epoll with ERR_ZCIO_UNSUPPORTED.

import test from 'ava'
import { inspect } from 'node:util'
import { probed, zcio } from './support.js'

const { Ring } = zcio

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

epollTest('busyPoll on an epoll ring throws ERR_ZCIO_UNSUPPORTED naming the backend', (t) => {
  const err = t.throws(() => new Ring({ entries: 8, backend: 'epoll', busyPoll: 50 })) as NodeJS.ErrnoException
  t.is(err.code, 'ERR_ZCIO_UNSUPPORTED')
  t.regex(err.message, /busy polling.*epoll backend/)
  using ring = new Ring({ entries: 8, backend: 'epoll' })
  const set = t.throws(() => {
    ring.busyPoll = 10
  }) as NodeJS.ErrnoException
  t.is(set.code, 'ERR_ZCIO_UNSUPPORTED')
  t.regex(set.message, /epoll backend/)
  t.is(ring.busyPoll, 0)
  // Turning it off is always allowed.
  ring.busyPoll = 0
})
