import test from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

export { root, zcio } from './load.js'
import { zcio } from './load.js'

export const probed = zcio.probe()

/** Set where a run must not skip: io_uring missing is then a failure. */
const required = process.env.ZCIO_REQUIRE_IO_URING === '1'
const available = probed.ioUring && probed.fixedBuffers

/**
 * `test` when the kernel has fixed buffers, `test.skip` (reported as skipped)
 * otherwise, or `test` (failing) when ZCIO_REQUIRE_IO_URING=1.
 */
export const fixedTest = available || required ? test : test.skip
if (!available) {
  const why = probed.reason ?? 'no fixed-buffer support'
  if (required) test('io_uring is available (ZCIO_REQUIRE_IO_URING=1)', (t) => t.fail(why))
  else console.warn(`zcio: skipping io_uring tests: ${why}`)
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
