import test from 'ava'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { codeOf, probed, root, zcio } from './support.js'

// Built by `cargo test` (which `npm test` runs first): runs a command with
// io_uring_setup denied by seccomp, as Docker's default profile does.
const helper = ['debug', 'release']
  .map((p) => path.join(root, 'target', p, 'examples', 'deny_io_uring'))
  .find((p) => fs.existsSync(p))
const helperTest = helper ? test : test.skip
if (!helper) console.warn('zcio: deny_io_uring not built (run cargo test): skipping the seccomp test')

helperTest('io_uring denied by seccomp: probe explains, new Ring() throws ERR_ZCIO_URING_UNAVAILABLE', (t) => {
  const script = `
    const z = require(${JSON.stringify(root)})
    const p = z.probe()
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

test('probe() says why io_uring is unavailable exactly when it is', (t) => {
  const p = zcio.probe()
  if (p.ioUring) {
    t.is(p.ioUringUnavailable, undefined)
    t.is(p.reason, undefined)
  } else {
    const why = p.ioUringUnavailable
    t.truthy(why, 'ioUring is false without ioUringUnavailable')
    t.true(['seccomp', 'sysctl', 'ENOSYS', 'opcodes', 'forced', 'setup'].includes(why!.kind), why!.kind)
    t.is(p.reason, why!.message as string | undefined)
  }
})

// Where probe() finds no io_uring (an old or locked-down kernel, or an
// emulator such as qemu-user, which answers io_uring_setup with ENOSYS).
const withoutUring = probed.ioUring ? test.skip : test
if (probed.ioUring) console.warn('zcio: io_uring is available here: skipping the test of new Ring() without it')

withoutUring('without io_uring, new Ring() throws ERR_ZCIO_URING_UNAVAILABLE saying why', (t) => {
  t.is(typeof probed.reason, 'string')
  t.false(probed.fixedBuffers)
  let err: (Error & { code?: string; syscall?: string }) | undefined
  try {
    new zcio.Ring()
  } catch (e) {
    err = e as Error & { code?: string }
  }
  t.truthy(err, 'new Ring() did not throw')
  t.is(err!.code, 'ERR_ZCIO_URING_UNAVAILABLE')
  t.is(err!.syscall, 'io_uring_setup')
  t.true(err!.message.length > 20, err!.message)
  t.is(codeOf(() => new zcio.Ring({ entries: 8 })), 'ERR_ZCIO_URING_UNAVAILABLE')
})
