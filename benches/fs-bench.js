'use strict'

// Read throughput of zcio registered buffers next to the Node fs baselines
// (and fio, when installed) on one page-cache-warm file.
//
// `run(opts)` creates the file, runs every case for `durationSec` after a
// short warm-up and resolves with a plain results object; `bin/zcio.js`
// formats it. Progress goes to stderr: one `\r`-updated line on a TTY, one
// line per case start/end otherwise.

const fs = require('fs')
const os = require('os')
const path = require('path')
const crypto = require('crypto')
const { spawn, spawnSync } = require('child_process')
const { performance } = require('perf_hooks')

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB

const BLOCK = 4 * KiB // random reads
const SEQ_BLOCK = MiB // sequential reads
const RANDOM_DEPTH = 64
const SEQ_DEPTH = 4
const WARMUP_MS = 300
const PAINT_MS = 100
const SEED = 0x2545f491
const MIN_SIZE = SEQ_BLOCK

const GROUP_RAND_D1 = 'random 4K d1'
const GROUP_RAND_D64 = 'random 4K d64'
const GROUP_SEQ = 'sequential 1M'
const GROUPS = [GROUP_RAND_D1, GROUP_RAND_D64, GROUP_SEQ]

const FS_READ = 'fs.read (callback)'
const FH_READ = 'FileHandle.read (fs.promises)'
const READ_SYNC = 'fs.readSync'
const ZCIO_PROMISE = 'zcio readFixed (promise)'
const ZCIO_BATCH = 'zcio readFixedBatch'

function usageError(message) {
  const err = new Error(message)
  err.code = 'ERR_ZCIO_BENCH_USAGE'
  return err
}

function readError(what, got, want, offset) {
  const err = new Error(
    got < 0
      ? `${what} failed at offset ${offset}: errno ${-got}`
      : `${what} returned ${got} bytes at offset ${offset}, expected ${want} (short read)`,
  )
  err.code = 'ERR_ZCIO_BENCH_READ'
  return err
}

// xorshift32: cheap and identical for every case, so no case pays more for
// its offsets than another.
class XorShift32 {
  constructor(seed) {
    this.state = seed >>> 0 || 1
  }

  next() {
    let x = this.state
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.state = x >>> 0
    return this.state
  }
}

// 4 KiB-aligned offsets, uniform in [0, size - 4096].
function randomOffsets(size) {
  const rng = new XorShift32(SEED)
  const blocks = Math.floor((size - BLOCK) / BLOCK) + 1
  return () => (rng.next() % blocks) * BLOCK
}

// Offsets walking the file in `len` steps, wrapping before a read would pass
// the end.
function sequentialOffsets(size, len) {
  let pos = 0
  return () => {
    if (pos + len > size) pos = 0
    const offset = pos
    pos += len
    return offset
  }
}

// Counts completed operations of one timed run and decides when to stop.
class Meter {
  constructor(durationMs, paint) {
    this.ops = 0
    this.aborted = false
    this.start = performance.now()
    this.deadline = this.start + durationMs
    this.nextPaint = this.start + PAINT_MS
    this.paint = paint
  }

  // Records `n` completed operations; true while another should start.
  tick(n) {
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
async function concurrentLoops(m, depth, loop) {
  const loops = []
  for (let i = 0; i < depth; i++) {
    loops.push(
      loop(i).catch((err) => {
        m.aborted = true
        throw err
      }),
    )
  }
  const settled = await Promise.allSettled(loops)
  const failed = settled.find((s) => s.status === 'rejected')
  if (failed) throw failed.reason
}

// ---------------------------------------------------------------------------
// Progress on stderr

class Progress {
  constructor(stream, quiet) {
    this.stream = stream
    this.quiet = !!quiet
    this.tty = !this.quiet && !!stream.isTTY
    this.shown = false
  }

  // Replaces the progress line (TTY only).
  update(text) {
    if (!this.tty) return
    const width = (this.stream.columns || 80) - 1
    this.stream.write('\r' + (text.length > width ? text.slice(0, width) : text) + '\x1b[K')
    this.shown = true
  }

  clear() {
    if (this.tty && this.shown) {
      this.stream.write('\r\x1b[K')
      this.shown = false
    }
  }

  // A line of its own (non-TTY only): the start or end of a step.
  line(text) {
    if (this.quiet || this.tty) return
    this.stream.write(text + '\n')
  }
}

function mib(bytes) {
  return (bytes / MiB).toFixed(bytes % MiB === 0 ? 0 : 1)
}

function fmtInt(n) {
  return Math.round(n).toLocaleString('en-US')
}

// ---------------------------------------------------------------------------
// The test file

// Every 4 KiB block starts with its own file offset (two little-endian
// uint32), so a read can be checked for landing where it was asked to.
function stampBlocks(buf, fileOffset, len) {
  for (let o = 0; o + 8 <= len; o += BLOCK) {
    const at = fileOffset + o
    buf.writeUInt32LE(at % 0x100000000, o)
    buf.writeUInt32LE(Math.floor(at / 0x100000000), o + 4)
  }
}

function checkStamps(view, fileOffset, len, what) {
  const buf = Buffer.from(view.buffer, view.byteOffset, len)
  for (let o = 0; o + 8 <= len; o += BLOCK) {
    const at = fileOffset + o
    if (buf.readUInt32LE(o) !== at % 0x100000000 || buf.readUInt32LE(o + 4) !== Math.floor(at / 0x100000000)) {
      const err = new Error(`${what}: data read at offset ${fileOffset} does not match the file (block at ${at})`)
      err.code = 'ERR_ZCIO_BENCH_DATA'
      throw err
    }
  }
}

function createFile(file, size, progress) {
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

function warmFile(fd, size, progress) {
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

// ---------------------------------------------------------------------------
// Node baselines: one preallocated Buffer per concurrent chain.

function fsReadCallback(fd, len, depth) {
  const bufs = Array.from({ length: depth }, () => Buffer.alloc(len))
  return (m, next) =>
    new Promise((resolve, reject) => {
      let active = depth
      let error = null
      const finish = () => {
        if (--active === 0) {
          if (error) reject(error)
          else resolve()
        }
      }
      for (let i = 0; i < depth; i++) {
        const buf = bufs[i]
        let offset = next()
        const onRead = (err, n) => {
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

function fileHandleRead(handle, len, depth) {
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

function readSync(fd, len) {
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

function zcioPromise(pool, fd, len, indices) {
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

function zcioBatch(pool, fd, len, acquired) {
  const depth = acquired.length
  const indices = Uint32Array.from(acquired)
  const offsets = new Float64Array(depth)
  const lengths = new Uint32Array(depth).fill(len)
  return async (m, next) => {
    for (;;) {
      for (let k = 0; k < depth; k++) offsets[k] = next()
      const res = await pool.readFixedBatch(fd, indices, offsets, lengths)
      for (let k = 0; k < depth; k++) {
        if (res[k] !== len) throw readError('readFixedBatch', res[k], len, offsets[k])
      }
      if (!m.tick(depth)) return
    }
  }
}

// Reads one round through both zcio paths and compares the data with the
// file's block stamps (not timed).
async function verifyPool(pool, fd, len, acquired, next) {
  const views = acquired.map((index) => pool.get(index))
  const offsets = Float64Array.from(acquired, () => next())
  const res = await pool.readFixedBatch(fd, Uint32Array.from(acquired), offsets, new Uint32Array(acquired.length).fill(len))
  for (let k = 0; k < acquired.length; k++) {
    if (res[k] !== len) throw readError('readFixedBatch', res[k], len, offsets[k])
    checkStamps(views[k], offsets[k], len, 'readFixedBatch')
  }
  const offset = next()
  const n = await pool.readFixed(fd, acquired[0], offset, len)
  if (n !== len) throw readError('readFixed', n, len, offset)
  checkStamps(views[0], offset, len, 'readFixed')
}

function heapUsed() {
  if (typeof global.gc === 'function') {
    global.gc()
    global.gc()
  }
  return process.memoryUsage().heapUsed
}

// ---------------------------------------------------------------------------
// fio

function fioVersion() {
  const r = spawnSync('fio', ['--version'], { encoding: 'utf8' })
  if (r.error || r.status !== 0) return null
  return (r.stdout || '').trim() || 'fio'
}

function fioRuntime(durationSec) {
  return Number.isInteger(durationSec) ? String(durationSec) : `${Math.max(1, Math.round(durationSec * 1000))}ms`
}

function fioArgs(spec, file, size, durationSec) {
  const args = [
    `--name=${spec.job}`,
    `--filename=${file}`,
    `--rw=${spec.rw}`,
    `--bs=${spec.bs}`,
    '--ioengine=io_uring',
    `--iodepth=${spec.depth}`,
    `--runtime=${fioRuntime(durationSec)}`,
    '--time_based',
    `--size=${size}`,
    '--output-format=json',
    '--invalidate=0',
    '--direct=0',
  ]
  if (spec.fixedbufs) args.push('--fixedbufs', '--registerfiles')
  return args
}

function runFio(args, durationSec, onTick) {
  return new Promise((resolve) => {
    const child = spawn('fio', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    const out = []
    const err = []
    child.stdout.on('data', (d) => out.push(d))
    child.stderr.on('data', (d) => err.push(d))
    const started = performance.now()
    const timer = setInterval(() => onTick((performance.now() - started) / 1000), PAINT_MS)
    const killer = setTimeout(() => child.kill('SIGKILL'), durationSec * 1000 + 60000)
    const done = (result) => {
      clearInterval(timer)
      clearTimeout(killer)
      resolve(result)
    }
    child.on('error', (e) => done({ error: e.message }))
    child.on('close', (code, signal) => {
      const stdout = Buffer.concat(out).toString('utf8')
      const stderr = Buffer.concat(err).toString('utf8').trim()
      if (code !== 0) {
        const why = stderr.split('\n').filter(Boolean).slice(-1)[0] || (signal ? `killed by ${signal}` : `exit code ${code}`)
        return done({ error: why })
      }
      try {
        const json = JSON.parse(stdout.slice(stdout.indexOf('{'), stdout.lastIndexOf('}') + 1))
        const read = json.jobs[0].read
        if (read.error || json.jobs[0].error) return done({ error: `fio job error ${json.jobs[0].error}` })
        done({ iops: read.iops, bwBytes: read.bw_bytes })
      } catch (e) {
        done({ error: `cannot parse fio output: ${e.message}` })
      }
    })
  })
}

// ---------------------------------------------------------------------------
// The run

function defaultFile(dir) {
  return path.join(dir, `zcio-bench-${process.pid}-${crypto.randomBytes(4).toString('hex')}.dat`)
}

function resolveFile(file) {
  if (file == null) return defaultFile(os.tmpdir())
  let st = null
  try {
    st = fs.statSync(file)
  } catch (e) {
    if (e.code !== 'ENOENT') throw e
  }
  if (st && st.isDirectory()) return defaultFile(file)
  if (st) throw usageError(`--file ${file} already exists; give a new path (it is created and deleted) or a directory`)
  return path.resolve(file)
}

function checkOptions(opts) {
  const size = opts.size === undefined ? GiB : opts.size
  const durationSec = opts.durationSec === undefined ? 3 : opts.durationSec
  if (!Number.isSafeInteger(size) || size < MIN_SIZE) {
    throw usageError(`size must be a whole number of bytes, at least ${MIN_SIZE} (1 MiB); got ${size}`)
  }
  if (typeof durationSec !== 'number' || !Number.isFinite(durationSec) || durationSec <= 0 || durationSec > 3600) {
    throw usageError(`duration must be a number of seconds in (0, 3600]; got ${durationSec}`)
  }
  return { size, durationSec }
}

function checkSpace(dir, size) {
  if (typeof fs.statfsSync !== 'function') return
  let st
  try {
    st = fs.statfsSync(dir)
  } catch {
    return
  }
  const free = st.bavail * st.bsize
  if (free < size + 64 * MiB) {
    const err = new Error(`not enough free space in ${dir} for a ${mib(size)} MiB file (${mib(free)} MiB free); use --size or --file`)
    err.code = 'ERR_ZCIO_BENCH_SPACE'
    throw err
  }
}

function machineFacts(zcio) {
  const cpus = os.cpus()
  return {
    cpus: cpus.length,
    cpuModel: cpus.length ? cpus[0].model.trim() : 'unknown',
    kernelRelease: (zcio.probe && zcio.probe.kernelRelease) || os.release(),
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    totalMemBytes: os.totalmem(),
    memlockLimit: zcio.probe && zcio.probe.memlockLimit !== undefined ? zcio.probe.memlockLimit : undefined,
  }
}

function loadZcio() {
  let binding
  try {
    binding = require('..')
  } catch (e) {
    return { available: false, reason: `cannot load zcio: ${e.message}` }
  }
  let probe
  try {
    probe = binding.probe()
  } catch (e) {
    return { available: false, reason: `probe() failed: ${e.message}` }
  }
  if (!probe.ioUring) return { available: false, probe, reason: `io_uring unavailable: ${probe.reason || 'unknown reason'}` }
  if (!probe.fixedBuffers) {
    return { available: false, probe, reason: `fixed buffers unsupported by kernel ${probe.kernelRelease} (needs Linux 5.13+)` }
  }
  return { available: true, probe, binding, reason: null }
}

/**
 * Runs the benchmark.
 *
 * @param {object} [opts]
 * @param {number} [opts.size] file size in bytes (default 1 GiB, at least 1 MiB)
 * @param {number} [opts.durationSec] measured seconds per case (default 3)
 * @param {string} [opts.file] where to create the file (a new path, or a
 *   directory); default a fresh file in `os.tmpdir()`. Deleted at the end.
 * @param {boolean} [opts.fio] run the fio reference when installed (default true)
 * @param {boolean} [opts.quiet] no progress output
 * @param {NodeJS.WritableStream} [opts.progressStream] default `process.stderr`
 * @returns {Promise<object>} `{ machine, config, zcio, results, skipped, fio, notes }`
 */
async function run(opts = {}) {
  const { size, durationSec } = checkOptions(opts)
  const durationMs = durationSec * 1000
  const progress = new Progress(opts.progressStream || process.stderr, opts.quiet)
  const notes = []
  const results = []
  const skipped = []

  const zcio = loadZcio()
  if (!zcio.available) notes.push(`zcio cases skipped: ${zcio.reason}`)

  const file = resolveFile(opts.file)
  checkSpace(path.dirname(file), size)

  const machine = machineFacts(zcio)
  const config = {
    sizeBytes: size,
    durationSec,
    warmupSec: WARMUP_MS / 1000,
    file,
    randomBlockBytes: BLOCK,
    randomDepth: RANDOM_DEPTH,
    seqBlockBytes: SEQ_BLOCK,
    seqDepth: SEQ_DEPTH,
    prng: 'xorshift32',
    seed: SEED,
    gcExposed: typeof global.gc === 'function',
  }
  if (!config.gcExposed) notes.push('heap deltas measured without global.gc (run node with --expose-gc for stable numbers)')
  if (size > os.totalmem() * 0.75) {
    notes.push(`the ${mib(size)} MiB file may not stay in the page cache (${mib(os.totalmem())} MiB of memory)`)
  }

  let created = false
  let fd = -1
  let handle = null
  let ring = null
  const cleanupSync = () => {
    if (fd >= 0) {
      try {
        fs.closeSync(fd)
      } catch {}
      fd = -1
    }
    if (created) {
      try {
        fs.unlinkSync(file)
      } catch {}
      created = false
    }
  }
  // An interrupted run still removes its file, then dies of the signal.
  const onSignal = (signal) => {
    progress.clear()
    cleanupSync()
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
    process.kill(process.pid, signal)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  try {
    try {
      createFile(file, size, progress)
      created = true
    } catch (e) {
      if (e.code === 'EEXIST') throw usageError(`${file} already exists`)
      // A partial file was created by us: remove it.
      try {
        fs.unlinkSync(file)
      } catch {}
      throw e
    }
    fd = fs.openSync(file, 'r')
    warmFile(fd, size, progress)
    handle = await fs.promises.open(file, 'r')

    if (zcio.available) {
      try {
        ring = new zcio.binding.Ring()
      } catch (e) {
        zcio.available = false
        zcio.reason = `new Ring() failed: ${e.code ? e.code + ': ' : ''}${e.message}`
        notes.push(`zcio cases skipped: ${zcio.reason}`)
      }
    }

    const cases = buildCases({ fd, handle, size, ring: () => ring })
    const fioVer = opts.fio === false ? null : fioVersion()
    if (opts.fio === false) notes.push('fio reference skipped (disabled)')
    else if (!fioVer) notes.push('fio not installed: reference column skipped (apt-get install fio)')
    const fio = fioVer ? { version: fioVer, runs: [] } : null

    const runnable = cases.filter((c) => c.kind !== 'zcio' || zcio.available).length + (fio ? FIO_SPECS.length : 0)
    let step = 0

    for (const group of GROUPS) {
      for (const c of cases.filter((x) => x.group === group)) {
        if (c.kind === 'zcio' && !zcio.available) {
          skipped.push({ group: c.group, name: c.name, depth: c.depth, reason: zcio.reason })
          continue
        }
        step++
        const r = await measureCase(c, { durationMs, progress, step, steps: runnable })
        if (r.skipped) {
          skipped.push({ group: c.group, name: c.name, depth: c.depth, reason: r.reason })
        } else {
          results.push(r)
        }
      }
      if (fio) {
        for (const spec of FIO_SPECS.filter((s) => s.group === group)) {
          step++
          const args = fioArgs(spec, file, size, durationSec)
          const label = `[${step}/${runnable}] ${group} > ${spec.name} d${spec.depth}`
          progress.line(`${label} ...`)
          const r = await runFio(args, durationSec, (elapsed) =>
            progress.update(`${label}  ${Math.min(elapsed, durationSec).toFixed(1)}/${durationSec} s`),
          )
          progress.clear()
          const entry = { group, name: spec.name, depth: spec.depth, fixedbufs: !!spec.fixedbufs, args: ['fio', ...args].join(' ') }
          if (r.error) {
            entry.error = r.error
            notes.push(`${group} / ${spec.name}: fio failed: ${r.error}`)
            progress.line(`${label}: failed: ${r.error}`)
          } else {
            entry.iops = r.iops
            entry.bwBytes = r.bwBytes
            entry.gbPerSec = r.bwBytes / 1e9
            progress.line(`${label}: ${fmtInt(r.iops)} IOPS, ${(r.bwBytes / 1e9).toFixed(3)} GB/s`)
          }
          fio.runs.push(entry)
        }
      }
    }

    addRatios(results, fio)
    return { machine, config, zcio: { available: zcio.available, reason: zcio.reason, ringFeatures: ring ? ring.features : null }, results, skipped, fio, notes }
  } finally {
    progress.clear()
    if (handle) await handle.close().catch(() => {})
    if (ring) ring.close()
    cleanupSync()
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
  }
}

const FIO_SPECS = [
  { group: GROUP_RAND_D1, name: 'fio io_uring', job: 'rand', rw: 'randread', bs: '4k', depth: 1 },
  { group: GROUP_RAND_D64, name: 'fio io_uring', job: 'rand', rw: 'randread', bs: '4k', depth: RANDOM_DEPTH },
  { group: GROUP_RAND_D64, name: 'fio io_uring fixedbufs', job: 'rand', rw: 'randread', bs: '4k', depth: RANDOM_DEPTH, fixedbufs: true },
  { group: GROUP_SEQ, name: 'fio io_uring', job: 'seq', rw: 'read', bs: '1M', depth: SEQ_DEPTH },
]

function buildCases({ fd, handle, size, ring }) {
  const cases = []
  const rand = () => randomOffsets(size)
  const seq = () => sequentialOffsets(size, SEQ_BLOCK)
  const node = (group, name, depth, len, offsets, make) => cases.push({ group, name, depth, len, kind: 'node', offsets, make })
  // zcio cases get their own pool, created when the case starts and closed
  // when it ends, so only one is registered at a time.
  const zcio = (group, name, depth, len, offsets, poolSize, poolCount, make) =>
    cases.push({ group, name, depth, len, kind: 'zcio', offsets, poolSize, poolCount, make, ring, fd })

  node(GROUP_RAND_D1, FS_READ, 1, BLOCK, rand, () => fsReadCallback(fd, BLOCK, 1))
  node(GROUP_RAND_D1, FH_READ, 1, BLOCK, rand, () => fileHandleRead(handle, BLOCK, 1))
  node(GROUP_RAND_D1, READ_SYNC, 1, BLOCK, rand, () => readSync(fd, BLOCK))
  zcio(GROUP_RAND_D1, ZCIO_PROMISE, 1, BLOCK, rand, BLOCK, RANDOM_DEPTH, (pool, idx) => zcioPromise(pool, fd, BLOCK, idx.slice(0, 1)))

  node(GROUP_RAND_D64, FS_READ, RANDOM_DEPTH, BLOCK, rand, () => fsReadCallback(fd, BLOCK, RANDOM_DEPTH))
  node(GROUP_RAND_D64, FH_READ, RANDOM_DEPTH, BLOCK, rand, () => fileHandleRead(handle, BLOCK, RANDOM_DEPTH))
  node(GROUP_RAND_D64, READ_SYNC, 'sync', BLOCK, rand, () => readSync(fd, BLOCK))
  zcio(GROUP_RAND_D64, ZCIO_PROMISE, RANDOM_DEPTH, BLOCK, rand, BLOCK, RANDOM_DEPTH, (pool, idx) => zcioPromise(pool, fd, BLOCK, idx))
  zcio(GROUP_RAND_D64, ZCIO_BATCH, RANDOM_DEPTH, BLOCK, rand, BLOCK, RANDOM_DEPTH, (pool, idx) => zcioBatch(pool, fd, BLOCK, idx))

  node(GROUP_SEQ, FS_READ, 1, SEQ_BLOCK, seq, () => fsReadCallback(fd, SEQ_BLOCK, 1))
  node(GROUP_SEQ, FS_READ, SEQ_DEPTH, SEQ_BLOCK, seq, () => fsReadCallback(fd, SEQ_BLOCK, SEQ_DEPTH))
  node(GROUP_SEQ, READ_SYNC, 1, SEQ_BLOCK, seq, () => readSync(fd, SEQ_BLOCK))
  zcio(GROUP_SEQ, ZCIO_PROMISE, SEQ_DEPTH, SEQ_BLOCK, seq, SEQ_BLOCK, SEQ_DEPTH, (pool, idx) => zcioPromise(pool, fd, SEQ_BLOCK, idx))
  zcio(GROUP_SEQ, ZCIO_BATCH, SEQ_DEPTH, SEQ_BLOCK, seq, SEQ_BLOCK, SEQ_DEPTH, (pool, idx) => zcioBatch(pool, fd, SEQ_BLOCK, idx))
  return cases
}

async function measureCase(c, { durationMs, progress, step, steps }) {
  const label = `[${step}/${steps}] ${c.group} > ${c.name} ${c.depth === 'sync' ? 'sync' : 'd' + c.depth}`
  const durationSec = durationMs / 1000
  let pool = null
  let acquired = []
  let heapBefore = 0
  const next = c.offsets()
  progress.line(`${label} ...`)
  try {
    let body
    if (c.kind === 'zcio') {
      const { RegisteredBufferPool } = require('..')
      try {
        pool = new RegisteredBufferPool(c.ring(), c.poolSize, c.poolCount)
      } catch (e) {
        const hint = e.code === 'ENOMEM' && !/ulimit/.test(e.message) ? ' (raise `ulimit -l`)' : ''
        return { skipped: true, reason: `new RegisteredBufferPool(${c.poolSize}, ${c.poolCount}) failed: ${e.code ? e.code + ': ' : ''}${e.message}${hint}` }
      }
      for (let i = 0; i < c.poolCount; i++) acquired.push(pool.acquire().index)
      await verifyPool(pool, c.fd, c.len, acquired, next)
      body = c.make(pool, acquired)
      heapBefore = heapUsed()
    } else {
      body = c.make()
    }

    progress.update(`${label}  warm-up`)
    await body(new Meter(WARMUP_MS, null), next)

    const paint = (m, now) =>
      progress.update(`${label}  ${((now - m.start) / 1000).toFixed(1)}/${durationSec} s  ${fmtInt(m.ops)} ops`)
    const m = new Meter(durationMs, paint)
    await body(m, next)
    const elapsedSec = (performance.now() - m.start) / 1000
    progress.clear()

    const opsPerSec = m.ops / elapsedSec
    const r = {
      group: c.group,
      name: c.name,
      depth: c.depth,
      blockBytes: c.len,
      ops: m.ops,
      elapsedSec,
      opsPerSec,
      gbPerSec: (opsPerSec * c.len) / 1e9,
      ratioToFsRead: null,
      ratioToFio: null,
    }
    if (c.kind === 'zcio') r.heapDeltaBytes = heapUsed() - heapBefore
    progress.line(`${label}: ${fmtInt(opsPerSec)} ops/s, ${r.gbPerSec.toFixed(3)} GB/s`)
    return r
  } finally {
    progress.clear()
    if (pool) {
      try {
        for (const index of acquired) pool.release(index)
        pool.close()
      } catch {
        // Something still in flight after a failure: ring.close() at the
        // end of the run cancels it and closes the pool.
      }
    }
  }
}

// Ratio to the group's fs.read (callback) at the same depth, or to the
// group's fs.read at the group's nominal depth when none matches (readSync
// at "sync"); ratio to the group's plain fio io_uring run.
function addRatios(results, fio) {
  const nominal = { [GROUP_RAND_D1]: 1, [GROUP_RAND_D64]: RANDOM_DEPTH, [GROUP_SEQ]: SEQ_DEPTH }
  for (const r of results) {
    const fsReads = results.filter((x) => x.group === r.group && x.name === FS_READ)
    const base = fsReads.find((x) => x.depth === r.depth) || fsReads.find((x) => x.depth === nominal[r.group])
    if (base && base.opsPerSec > 0) r.ratioToFsRead = r.opsPerSec / base.opsPerSec
    if (fio) {
      const ref = fio.runs.find((x) => x.group === r.group && !x.fixedbufs && !x.error)
      if (ref && ref.iops > 0) r.ratioToFio = r.opsPerSec / ref.iops
    }
  }
  if (fio) {
    for (const f of fio.runs) {
      if (f.error) continue
      const fsReads = results.filter((x) => x.group === f.group && x.name === FS_READ)
      const base = fsReads.find((x) => x.depth === f.depth) || fsReads.find((x) => x.depth === nominal[f.group])
      f.ratioToFsRead = base && base.opsPerSec > 0 ? f.iops / base.opsPerSec : null
    }
  }
}

module.exports = { run, GROUPS }
