// The timed loops: Node fs baselines and the two zcio read paths.

import * as fs from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { performance } from 'node:perf_hooks'
import { BLOCK, BenchError, PAINT_MS, readError, SEED, XorShift32 } from './common.js'
import type { RegisteredBufferPool } from './common.js'

/** Hands out the file offset of the next read. */
export type Offsets = () => number

/** One timed run of a case: reads until `m.tick()` says stop. */
export type Body = (m: Meter, next: Offsets) => Promise<void>

// 4 KiB-aligned offsets, uniform in [0, size - 4096].
export function randomOffsets(size: number): Offsets {
  const rng = new XorShift32(SEED)
  const blocks = Math.floor((size - BLOCK) / BLOCK) + 1
  return () => (rng.next() % blocks) * BLOCK
}

// Offsets walking the file in `len` steps, wrapping before a read would pass
// the end.
export function sequentialOffsets(size: number, len: number): Offsets {
  let pos = 0
  return () => {
    if (pos + len > size) pos = 0
    const offset = pos
    pos += len
    return offset
  }
}

/** Counts completed operations of one timed run and decides when to stop. */
export class Meter {
  ops = 0
  aborted = false
  readonly start: number
  private readonly deadline: number
  private nextPaint: number
  private readonly paint: ((m: Meter, now: number) => void) | null

  constructor(durationMs: number, paint: ((m: Meter, now: number) => void) | null) {
    this.start = performance.now()
    this.deadline = this.start + durationMs
    this.nextPaint = this.start + PAINT_MS
    this.paint = paint
  }

  /** Records `n` completed operations; true while another should start. */
  tick(n: number): boolean {
    this.ops += n
    if (this.aborted) return false
    const now = performance.now()
    if (now >= this.nextPaint) {
      this.nextPaint = now + PAINT_MS
      if (this.paint) this.paint(this, now)
    }
    return now < this.deadline
  }
}

// Runs `depth` async loops; the first failure stops the others at their next
// completion, and all of them have settled (nothing left in flight) when this
// rejects.
async function concurrentLoops(m: Meter, depth: number, loop: (i: number) => Promise<void>): Promise<void> {
  const loops: Promise<void>[] = []
  for (let i = 0; i < depth; i++) {
    loops.push(
      loop(i).catch((err: unknown) => {
        m.aborted = true
        throw err
      }),
    )
  }
  const settled = await Promise.allSettled(loops)
  for (const s of settled) if (s.status === 'rejected') throw s.reason
}

// ---------------------------------------------------------------------------
// The test file's contents

// Every 4 KiB block starts with its own file offset (two little-endian
// uint32), so a read can be checked for landing where it was asked to.
export function stampBlocks(buf: Buffer, fileOffset: number, len: number): void {
  for (let o = 0; o + 8 <= len; o += BLOCK) {
    const at = fileOffset + o
    buf.writeUInt32LE(at % 0x100000000, o)
    buf.writeUInt32LE(Math.floor(at / 0x100000000), o + 4)
  }
}

function checkStamps(view: Uint8Array, fileOffset: number, len: number, what: string): void {
  const buf = Buffer.from(view.buffer, view.byteOffset, len)
  for (let o = 0; o + 8 <= len; o += BLOCK) {
    const at = fileOffset + o
    if (buf.readUInt32LE(o) !== at % 0x100000000 || buf.readUInt32LE(o + 4) !== Math.floor(at / 0x100000000)) {
      throw new BenchError('ERR_ZCIO_BENCH_DATA', `${what}: data read at offset ${fileOffset} does not match the file (block at ${at})`)
    }
  }
}

// ---------------------------------------------------------------------------
// Node baselines: one preallocated Buffer per concurrent chain.

export function fsReadCallback(fd: number, len: number, depth: number): Body {
  const bufs = Array.from({ length: depth }, () => Buffer.alloc(len))
  return (m, next) =>
    new Promise<void>((resolve, reject) => {
      let active = depth
      let error: Error | null = null
      const finish = (): void => {
        if (--active === 0) {
          if (error) reject(error)
          else resolve()
        }
      }
      for (let i = 0; i < depth; i++) {
        const buf = bufs[i]
        let offset = next()
        const onRead = (err: NodeJS.ErrnoException | null, n: number): void => {
          if (err || n !== len) {
            if (!error) error = err || readError('fs.read', n, len, offset)
            m.aborted = true
            finish()
            return
          }
          if (m.tick(1)) {
            offset = next()
            fs.read(fd, buf, 0, len, offset, onRead)
          } else {
            finish()
          }
        }
        fs.read(fd, buf, 0, len, offset, onRead)
      }
    })
}

export function fileHandleRead(handle: FileHandle, len: number, depth: number): Body {
  const bufs = Array.from({ length: depth }, () => Buffer.alloc(len))
  return (m, next) =>
    concurrentLoops(m, depth, async (i) => {
      const buf = bufs[i]
      for (;;) {
        const offset = next()
        const { bytesRead } = await handle.read(buf, 0, len, offset)
        if (bytesRead !== len) throw readError('FileHandle.read', bytesRead, len, offset)
        if (!m.tick(1)) return
      }
    })
}

export function readSync(fd: number, len: number): Body {
  const buf = Buffer.alloc(len)
  return async (m, next) => {
    for (;;) {
      const offset = next()
      const n = fs.readSync(fd, buf, 0, len, offset)
      if (n !== len) throw readError('fs.readSync', n, len, offset)
      if (!m.tick(1)) return
    }
  }
}

// ---------------------------------------------------------------------------
// zcio

/** One promise per read: `readFixed` on each of `indices`, concurrently. */
export function zcioPromise(pool: RegisteredBufferPool, fd: number, len: number, indices: readonly number[]): Body {
  return (m, next) =>
    concurrentLoops(m, indices.length, async (i) => {
      const index = indices[i]
      for (;;) {
        const offset = next()
        const n = await pool.readFixed(fd, index, offset, len)
        if (n !== len) throw readError('readFixed', n, len, offset)
        if (!m.tick(1)) return
      }
    })
}

/** One `readFixedBatch` call (one promise) per round of `acquired.length` reads. */
export function zcioBatch(pool: RegisteredBufferPool, fd: number, len: number, acquired: readonly number[]): Body {
  const depth = acquired.length
  const indices = Uint32Array.from(acquired)
  const positions = new Float64Array(depth)
  const lengths = new Uint32Array(depth).fill(len)
  return async (m, next) => {
    for (;;) {
      for (let k = 0; k < depth; k++) positions[k] = next()
      const res = await pool.readFixedBatch(fd, indices, positions, lengths)
      for (let k = 0; k < depth; k++) {
        if (res[k] !== len) throw readError('readFixedBatch', res[k], len, positions[k])
      }
      if (!m.tick(depth)) return
    }
  }
}

// Reads one round through both zcio paths and compares the data with the
// file's block stamps (not timed).
export async function verifyPool(
  pool: RegisteredBufferPool,
  fd: number,
  len: number,
  acquired: readonly number[],
  next: Offsets,
): Promise<void> {
  const views = acquired.map((index) => pool.get(index))
  const positions = Float64Array.from(acquired, () => next())
  const res = await pool.readFixedBatch(fd, Uint32Array.from(acquired), positions, new Uint32Array(acquired.length).fill(len))
  for (let k = 0; k < acquired.length; k++) {
    if (res[k] !== len) throw readError('readFixedBatch', res[k], len, positions[k])
    checkStamps(views[k], positions[k], len, 'readFixedBatch')
  }
  const offset = next()
  const n = await pool.readFixed(fd, acquired[0], offset, len)
  if (n !== len) throw readError('readFixed', n, len, offset)
  checkStamps(views[0], offset, len, 'readFixed')
}
