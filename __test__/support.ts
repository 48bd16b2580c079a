import test from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

export { root, zcio } from './load.js'
import { zcio } from './load.js'

export const probed = zcio.probe()

/**
 * Set (`ZCIO_TEST_EMULATED=1`, by scripts/test-arm64.sh) where the suite runs
 * under an emulator such as qemu-user, about ten times slower than natively:
 * timed tests stretch their times by `slow`, and the few that measure the
 * machine (benchmarks, memory growth over 100k cycles) skip, saying so.
 */
export const emulated = process.env.ZCIO_TEST_EMULATED === '1'
export const slow = emulated ? 10 : 1

/** `test`, or a visible skip under emulation (see `emulated`) naming `why`. */
export function nativeOnly(what: string, why: string): typeof test {
  if (!emulated) return test
  console.warn(`zcio: skipping ${what} under emulation: ${why}`)
  return test.skip as unknown as typeof test
}

/** Set where a run must not skip: io_uring missing is then a failure. */
const required = process.env.ZCIO_REQUIRE_IO_URING === '1'

/**
 * The backend a default `new Ring()` gets in this process (`ZCIO_BACKEND`,
 * else io_uring where usable, else epoll): the one the suite runs on.
 */
export const backend = probed.backend

/** A `probe()` feature a test can need, besides a working backend. */
export type Feature = 'fixedBuffers' | 'bufRing' | 'bufRingIncremental' | 'sendZc' | 'sqpoll'

/**
 * What the epoll backend does not have: a kernel submission thread is
 * io_uring's own (everything else, fixed buffers, buffer groups incremental
 * or not, zero-copy sends, is there on epoll).
 */
const URING_ONLY: readonly Feature[] = ['sqpoll']

const warned = new Set<string>()

/** Why a test needing `features` cannot run here, or undefined if it can. */
export function missing(...features: Feature[]): string | undefined {
  if (backend === 'epoll') {
    const absent = features.filter((f) => URING_ONLY.includes(f))
    return absent.length ? `${absent.join(', ')} needs io_uring and rings run on epoll here (${probed.reason})` : undefined
  }
  if (!probed.ioUring) return probed.reason ?? 'probe().ioUring is false'
  const absent = features.filter((f) => !probed[f])
  return absent.length ? absent.map((f) => `probe().${f} is false`).join(', ') : undefined
}

/** Whether a test needing `features` can run here (`missing()` says why not). */
export function can(...features: Feature[]): boolean {
  return missing(...features) === undefined
}

/**
 * `test` on io_uring, or a visible skip (the reason printed once per file)
 * on epoll: for tests of io_uring's own behaviour (setup flags, the TASKRUN
 * flag, memlock accounting), whose epoll counterpart is asserted elsewhere.
 */
export function uringOnly(what: string): typeof test | typeof test.skip {
  if (backend === 'io_uring' && probed.ioUring) return test
  if (!warned.has(what)) {
    warned.add(what)
    console.warn(`zcio: skipping ${what}: rings run on ${backend} here (${probed.reason})`)
  }
  return test.skip
}

function gate<T>(run: T, features: Feature[]): T | typeof test.skip {
  const why = missing(...features)
  if (why === undefined || required) return run
  const what = [backend, ...features].join(' + ')
  // Printed when a file registers its first such test, once per file.
  return ((...args: unknown[]) => {
    if (!warned.has(what)) {
      warned.add(what)
      console.warn(`zcio: skipping the tests that need ${what}: ${why}`)
    }
    ;(test.skip as (...a: unknown[]) => void)(...args)
  }) as typeof test.skip
}

/**
 * `test` where the backend of a default ring (io_uring, or epoll) has every
 * feature named, `test.skip`
 * (reported as skipped, with the reason printed once per file) elsewhere, or
 * `test` (failing) when ZCIO_REQUIRE_IO_URING=1.
 */
export function needs(...features: Feature[]): typeof test | typeof test.skip {
  return gate(test, features)
}

/** `needs`, with the tests run one at a time (`test.serial`). */
export function needsSerial(...features: Feature[]): typeof test.serial | typeof test.skip {
  return gate(test.serial, features)
}

/** `test` when the kernel has fixed buffers: `needs('fixedBuffers')`. */
export const fixedTest = needs('fixedBuffers')
if (required && missing('fixedBuffers') !== undefined) {
  test('io_uring is available (ZCIO_REQUIRE_IO_URING=1)', (t) => t.fail(missing('fixedBuffers')))
}

export function tmpFile(name: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zcio-test-'))
  return path.join(dir, name)
}

/** Whether O_DIRECT works on the temp directory's filesystem. */
export function directSupported(): boolean {
  const file = tmpFile('direct')
  try {
    fs.closeSync(fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_DIRECT))
    return true
  } catch {
    return false
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true })
  }
}

/** The `code` of the error a promise rejects with (undefined if it resolves). */
export async function rejectionCode(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p
  } catch (e) {
    return (e as NodeJS.ErrnoException).code
  }
  return undefined
}

export function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (e) {
    return (e as NodeJS.ErrnoException).code
  }
  return undefined
}
