import test from 'ava'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { probed, root, zcio } from './support.js'

// Built by `cargo test` (which `npm test` runs first): runs a command with
// io_uring_setup denied by seccomp, as Docker's default profile does.
const helper = ['debug', 'release']
  .map((p) => path.join(root, 'target', p, 'examples', 'deny_io_uring'))
  .find((p) => fs.existsSync(p))
const helperTest = helper ? test : test.skip
if (!helper) console.warn('zcio: deny_io_uring not built (run cargo test): skipping the seccomp test')

helperTest('io_uring denied by seccomp: probe explains, a ring falls back, io_uring asked for throws ERR_ZCIO_URING_UNAVAILABLE', (t) => {
  // ZCIO_BACKEND=io_uring (read at each ring's setup) asks for io_uring,
  // which the JS options can't yet.
  const script = `
    const z = require(${JSON.stringify(root)})
    const p = z.probe()
    new z.Ring({ entries: 8 }).close()
    process.env.ZCIO_BACKEND = 'io_uring'
    let err
    try { new z.Ring() } catch (e) { err = e }
    console.log(JSON.stringify({ p, code: err && err.code, errno: err && err.errno, syscall: err && err.syscall, message: err && err.message }))
  `
  const r = spawnSync(helper!, [process.execPath, '-e', script], { encoding: 'utf8', timeout: 30_000 })
  t.is(r.status, 0, r.stderr)
  const out = JSON.parse(r.stdout)
  t.false(out.p.ioUring)
  t.regex(out.p.reason, /seccomp/)
  t.deepEqual(out.p.ioUringUnavailable, { kind: 'seccomp', message: out.p.reason })
  t.is(out.code, 'ERR_ZCIO_URING_UNAVAILABLE')
  t.is(out.errno, -1)
  t.is(out.syscall, 'io_uring_setup')
  t.regex(out.message, /seccomp/)
})

test('probe() says why io_uring is not used exactly when it is not', (t) => {
  const p = zcio.probe()
  t.true(p.backend === 'io_uring' || p.backend === 'epoll', p.backend)
  if (p.ioUring && p.backend === 'io_uring') {
    t.is(p.ioUringUnavailable, undefined)
    t.is(p.reason, undefined)
  } else {
    const why = p.ioUringUnavailable
    t.truthy(why, `rings run on ${p.backend} (ioUring ${p.ioUring}) without ioUringUnavailable`)
    t.true(['seccomp', 'sysctl', 'ENOSYS', 'opcodes', 'forced', 'setup'].includes(why!.kind), why!.kind)
    // forced: io_uring works, ZCIO_BACKEND=epoll keeps rings off it.
    t.is(why!.kind === 'forced', p.ioUring)
    t.is(p.reason, why!.message as string | undefined)
  }
})

test.serial('probe() reads ZCIO_BACKEND at each call: epoll forced where io_uring works is kind forced', (t) => {
  const before = process.env.ZCIO_BACKEND
  try {
    process.env.ZCIO_BACKEND = 'epoll'
    const p = zcio.probe()
    t.is(p.backend, 'epoll')
    const ring = new zcio.Ring({ entries: 8 })
    t.is(ring.backend, 'epoll')
    ring.close()
    if (p.ioUring) {
      t.deepEqual(p.ioUringUnavailable, { kind: 'forced', message: p.reason! })
      t.regex(p.reason!, /unset ZCIO_BACKEND/)
    } else {
      t.not(p.ioUringUnavailable?.kind, 'forced')
    }
    delete process.env.ZCIO_BACKEND
    const q = zcio.probe()
    t.is(q.backend, q.ioUring ? 'io_uring' : 'epoll')
    t.is(q.ioUring, p.ioUring, 'ioUring is the kernel\'s answer, whatever ZCIO_BACKEND says')
    if (q.ioUring) t.is(q.ioUringUnavailable, undefined)
  } finally {
    if (before === undefined) delete process.env.ZCIO_BACKEND
    else process.env.ZCIO_BACKEND = before
  }
})

// The suite's second pass (scripts/test-backends.sh) runs under the
// deny_io_uring seccomp filter with ZCIO_EXPECT_SECCOMP=1: there rings must
// pick epoll by themselves, and probe() must say seccomp is why.
const underSeccomp = process.env.ZCIO_EXPECT_SECCOMP === '1'
if (!underSeccomp) console.warn('zcio: not under the deny_io_uring filter: skipping the check of the seccomp pass')
;(underSeccomp ? test : test.skip)('under a seccomp filter denying io_uring, rings pick epoll and probe() names seccomp', (t) => {
  const p = zcio.probe()
  t.false(p.ioUring)
  t.is(p.backend, 'epoll')
  t.is(p.ioUringUnavailable?.kind, 'seccomp')
  t.regex(p.reason!, /seccomp profile/)
  const ring = new zcio.Ring({ entries: 8 })
  t.is(ring.backend, 'epoll')
  ring.close()
})

// Where probe() finds no io_uring (an old or locked-down kernel, or an
// emulator such as qemu-user, which answers io_uring_setup with ENOSYS).
const withoutUring = probed.ioUring ? test.skip : test
if (probed.ioUring) console.warn('zcio: io_uring is available here: skipping the test of new Ring() without it')

withoutUring('without io_uring, a ring falls back; io_uring asked for throws ERR_ZCIO_URING_UNAVAILABLE saying why', (t) => {
  t.is(typeof probed.reason, 'string')
  t.false(probed.fixedBuffers)
  new zcio.Ring({ entries: 8 }).close()
  // Where io_uring_setup itself is refused, asking for io_uring says why.
  if (!['seccomp', 'sysctl', 'ENOSYS'].includes(probed.ioUringUnavailable?.kind ?? '')) {
    t.log(`io_uring sets up here (${probed.ioUringUnavailable?.kind}): not asking for it`)
    return
  }
  const before = process.env.ZCIO_BACKEND
  process.env.ZCIO_BACKEND = 'io_uring'
  let err: (Error & { code?: string; syscall?: string }) | undefined
  try {
    new zcio.Ring()
  } catch (e) {
    err = e as Error & { code?: string }
  } finally {
    if (before === undefined) delete process.env.ZCIO_BACKEND
    else process.env.ZCIO_BACKEND = before
  }
  t.truthy(err, 'new Ring() did not throw')
  t.is(err!.code, 'ERR_ZCIO_URING_UNAVAILABLE')
  t.is(err!.syscall, 'io_uring_setup')
  t.is(err!.message, `io_uring is unavailable: ${probed.reason}`)
})
