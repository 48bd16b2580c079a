// The bench file (created, warmed into the page cache, deleted) and the
// facts about the machine a run reports.

import * as crypto from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import { BenchError, GiB, MIN_SIZE, MiB, PAINT_MS, Progress, SEED, XorShift32, errorCode, mib, readError, usageError } from './common.js'
import type { MachineFacts, ZcioStatus } from './common.js'
import { stampBlocks } from './cases.js'

export function createFile(file: string, size: number, progress: Progress): void {
  const chunk = Buffer.allocUnsafe(MiB)
  const rng = new XorShift32(SEED ^ 0x5bd1e995)
  const words = new Uint32Array(chunk.buffer, chunk.byteOffset, MiB / 4)
  for (let i = 0; i < words.length; i++) words[i] = rng.next()

  const label = `creating ${file}`
  progress.line(`${label} (${mib(size)} MiB) ...`)
  const fd = fs.openSync(file, 'wx', 0o600)
  try {
    let nextPaint = 0
    for (let pos = 0; pos < size; ) {
      const n = Math.min(MiB, size - pos)
      stampBlocks(chunk, pos, n)
      for (let done = 0; done < n; ) done += fs.writeSync(fd, chunk, done, n - done, pos + done)
      pos += n
      const now = performance.now()
      if (now >= nextPaint) {
        nextPaint = now + PAINT_MS
        progress.update(`${label}  ${mib(pos)}/${mib(size)} MiB`)
      }
    }
    progress.update(`${label}  fsync`)
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
  progress.clear()
}

export function warmFile(fd: number, size: number, progress: Progress): void {
  const chunk = Buffer.allocUnsafe(MiB)
  progress.line(`warming the page cache (${mib(size)} MiB) ...`)
  let nextPaint = 0
  for (let pos = 0; pos < size; ) {
    const n = fs.readSync(fd, chunk, 0, Math.min(MiB, size - pos), pos)
    if (n <= 0) throw readError('fs.readSync (warm-up)', n, Math.min(MiB, size - pos), pos)
    pos += n
    const now = performance.now()
    if (now >= nextPaint) {
      nextPaint = now + PAINT_MS
      progress.update(`warming the page cache  ${mib(pos)}/${mib(size)} MiB`)
    }
  }
  progress.clear()
}

function defaultFile(dir: string): string {
  return path.join(dir, `zcio-bench-${process.pid}-${crypto.randomBytes(4).toString('hex')}.dat`)
}

export function resolveFile(file: string | undefined): string {
  if (file == null) return defaultFile(os.tmpdir())
  let st: fs.Stats | null = null
  try {
    st = fs.statSync(file)
  } catch (e) {
    if (errorCode(e) !== 'ENOENT') throw e
  }
  if (st && st.isDirectory()) return defaultFile(file)
  if (st) throw usageError(`--file ${file} already exists; give a new path (it is created and deleted) or a directory`)
  return path.resolve(file)
}

export function checkOptions(opts: { size?: number; durationSec?: number }): { size: number; durationSec: number } {
  const size = opts.size === undefined ? GiB : opts.size
  const durationSec = opts.durationSec === undefined ? 3 : opts.durationSec
  if (!Number.isSafeInteger(size) || size < MIN_SIZE) {
    throw usageError(`size must be a whole number of bytes, at least ${MIN_SIZE} (1 MiB); got ${size}`)
  }
  if (!Number.isFinite(durationSec) || durationSec <= 0 || durationSec > 3600) {
    throw usageError(`duration must be a number of seconds in (0, 3600]; got ${durationSec}`)
  }
  return { size, durationSec }
}

export function checkSpace(dir: string, size: number): void {
  let st: fs.StatsFs
  try {
    st = fs.statfsSync(dir)
  } catch {
    return
  }
  const free = st.bavail * st.bsize
  if (free < size + 64 * MiB) {
    throw new BenchError(
      'ERR_ZCIO_BENCH_SPACE',
      `not enough free space in ${dir} for a ${mib(size)} MiB file (${mib(free)} MiB free); use --size or --file`,
    )
  }
}

export function machineFacts(zcio: ZcioStatus): MachineFacts {
  const cpus = os.cpus()
  const facts: MachineFacts = {
    cpus: cpus.length,
    cpuModel: cpus.length ? cpus[0].model.trim() : 'unknown',
    kernelRelease: zcio.probe?.kernelRelease || os.release(),
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    totalMemBytes: os.totalmem(),
  }
  // Not every build's probe() reports it.
  const backend: unknown = zcio.probe ? Reflect.get(zcio.probe, 'backend') : undefined
  if (typeof backend === 'string') facts.backend = backend
  const memlock: unknown = zcio.probe ? Reflect.get(zcio.probe, 'memlockLimit') : undefined
  if (typeof memlock === 'number') facts.memlockLimit = memlock
  return facts
}

