// Read throughput of zcio registered buffers next to the Node fs baselines
// (and fio, when installed) on one page-cache-warm file.
//
// `run(opts)` creates the file, runs every case for `durationSec` after a
// short warm-up and resolves with a plain results object; `report.ts`
// formats it. Progress goes to stderr: one `\r`-updated line on a TTY, one
// line per case start/end otherwise.

import * as fs from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import * as os from 'node:os'
import * as path from 'node:path'
import { performance } from 'node:perf_hooks'
import {
  FH_READ,
  FS_READ,
  GROUP_RAND_D1,
  GROUP_RAND_D64,
  GROUP_SEQ,
  GROUPS,
  Progress,
  RANDOM_DEPTH,
  READ_SYNC,
  SEED,
  SEQ_BLOCK,
  SEQ_DEPTH,
  BLOCK,
  WARMUP_MS,
  ZCIO_BATCH,
  ZCIO_PROMISE,
  benchBackends,
  onBackend,
  errorCode,
  errorMessage,
  heapUsed,
  loadZcio,
  mib,
  usageError,
} from './common.js'
import type {
  BenchBackend,
  BenchConfig,
  BenchResult,
  CaseResult,
  Depth,
  FioReport,
  FioRun,
  Group,
  RegisteredBufferPool,
  Ring,
  SkippedCase,
  ZcioStatus,
} from './common.js'
import { Meter, fileHandleRead, fsReadCallback, randomOffsets, readSync, sequentialOffsets, verifyPool, zcioBatch, zcioPromise } from './cases.js'
import type { Body, Offsets } from './cases.js'
import { FIO_SPECS, fioName, fioVersion, measureFio } from './fio.js'
import { checkOptions, checkSpace, createFile, machineFacts, resolveFile, warmFile } from './setup.js'
import { fmtInt } from './format.js'

export { GROUPS, machineFacts }

export interface RunOptions {
  /** File size in bytes (default 1 GiB, at least 1 MiB). */
  size?: number
  /** Measured seconds per case (default 3). */
  durationSec?: number
  /** Where to create the file: a new path, or a directory (default a fresh file in `os.tmpdir()`); deleted at the end. */
  file?: string
  /** Run the fio reference when installed (default true). */
  fio?: boolean
  /** No progress output. */
  quiet?: boolean
  /** Default `process.stderr`. */
  progressStream?: NodeJS.WriteStream
}

interface CaseBase {
  group: Group
  name: string
  depth: Depth
  len: number
  offsets: () => Offsets
}

interface NodeCase extends CaseBase {
  kind: 'node'
  make: () => Body
}

// zcio cases get their own pool, created when the case starts and closed
// when it ends, so only one is registered at a time.
type BackendKind = BenchBackend

interface ZcioCase extends CaseBase {
  kind: 'zcio'
  backend: BackendKind
  poolSize: number
  poolCount: number
  make: (pool: RegisteredBufferPool, acquired: readonly number[]) => Body
}

type Case = NodeCase | ZcioCase

type Measured = CaseResult | { skipped: true; reason: string }

// ---------------------------------------------------------------------------
// The run

/** Runs the benchmark. */
export async function run(opts: RunOptions = {}): Promise<BenchResult> {
  const { size, durationSec } = checkOptions(opts)
  const durationMs = durationSec * 1000
  const progress = new Progress(opts.progressStream || process.stderr, opts.quiet)
  const notes: string[] = []
  const results: CaseResult[] = []
  const skipped: SkippedCase[] = []

  const zcio = await loadZcio()
  if (!zcio.available) notes.push(`zcio cases skipped: ${zcio.reason}`)

  const file = resolveFile(opts.file)
  checkSpace(path.dirname(file), size)

  const machine = machineFacts(zcio)
  const config: BenchConfig = {
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
    gcExposed: typeof globalThis.gc === 'function',
  }
  if (!config.gcExposed) notes.push('heap deltas measured without global.gc (run node with --expose-gc for stable numbers)')
  if (size > os.totalmem() * 0.75) {
    notes.push(`the ${mib(size)} MiB file may not stay in the page cache (${mib(os.totalmem())} MiB of memory)`)
  }

  let created = false
  let fd = -1
  let handle: FileHandle | null = null
  const rings = new Map<BackendKind, Ring>()
  const cleanupSync = (): void => {
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
  const onSignal = (signal: NodeJS.Signals): void => {
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
      if (errorCode(e) === 'EEXIST') throw usageError(`${file} already exists`)
      // A partial file was created by us: remove it.
      try {
        fs.unlinkSync(file)
      } catch {}
      throw e
    }
    fd = fs.openSync(file, 'r')
    warmFile(fd, size, progress)
    handle = await fs.promises.open(file, 'r')

    if (zcio.lib) {
      for (const backend of benchBackends(zcio.probe?.backend)) {
        try {
          rings.set(backend, new zcio.lib.Ring({ backend }))
        } catch (e) {
          const code = errorCode(e)
          const reason = `new Ring({ backend: '${backend}' }) failed: ${code ? code + ': ' : ''}${errorMessage(e)}`
          notes.push(`zcio cases on ${backend} skipped: ${reason}`)
          if (!zcio.reason) zcio.reason = reason
        }
      }
      if (rings.size === 0) zcio.available = false
    }
    const backends = [...rings.keys()]
    if (backends.length > 1) notes.push(`zcio cases run on both backends: plain names on ${backends[0]}, "[${backends[1]}]" on ${backends[1]}`)

    const cases = buildCases(fd, handle, size, backends.length ? backends : ['io_uring'])
    const fioVer = opts.fio === false ? null : fioVersion()
    if (opts.fio === false) notes.push('fio reference skipped (disabled)')
    else if (!fioVer) notes.push('fio not installed: reference rows skipped (apt-get install fio)')
    const fio: FioReport | null = fioVer ? { version: fioVer, runs: [] } : null

    const runnable = cases.filter((c) => c.kind !== 'zcio' || zcio.available).length + (fio ? FIO_SPECS.length : 0)
    let step = 0

    for (const group of GROUPS) {
      for (const c of cases.filter((x) => x.group === group)) {
        const ring = c.kind === 'zcio' ? (rings.get(c.backend) ?? null) : null
        if (c.kind === 'zcio' && (!zcio.lib || !ring)) {
          skipped.push({ group: c.group, name: c.name, depth: c.depth, reason: zcio.reason || 'zcio unavailable' })
          continue
        }
        step++
        const r = await measureCase(c, { durationMs, progress, step, steps: runnable, zcio, ring, fd })
        if ('skipped' in r) skipped.push({ group: c.group, name: c.name, depth: c.depth, reason: r.reason })
        else results.push(r)
      }
      for (const spec of FIO_SPECS.filter((s) => s.group === group)) {
        if (!fio) {
          const reason = opts.fio === false ? 'fio reference skipped (disabled)' : 'fio not installed'
          skipped.push({ group, name: fioName(spec.variant), depth: spec.depth, reason })
          continue
        }
        step++
        fio.runs.push(await measureFio(spec, { file, size, durationSec, progress, step, steps: runnable, notes }))
      }
    }

    addRatios(results, fio)
    return {
      machine,
      config,
      zcio: { available: zcio.available, reason: zcio.reason, ringFeatures: rings.get(backends[0])?.features ?? null },
      results,
      skipped,
      fio,
      notes,
    }
  } finally {
    progress.clear()
    if (handle) await handle.close().catch(() => {})
    for (const ring of rings.values()) ring.close()
    cleanupSync()
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
  }
}

function buildCases(fd: number, handle: FileHandle, size: number, backends: readonly BackendKind[]): Case[] {
  const cases: Case[] = []
  const rand = (): Offsets => randomOffsets(size)
  const seq = (): Offsets => sequentialOffsets(size, SEQ_BLOCK)
  const node = (group: Group, name: string, depth: Depth, len: number, offsets: () => Offsets, make: () => Body): void => {
    cases.push({ kind: 'node', group, name, depth, len, offsets, make })
  }
  const zcio = (
    group: Group,
    name: string,
    depth: number,
    len: number,
    offsets: () => Offsets,
    poolCount: number,
    make: ZcioCase['make'],
  ): void => {
    backends.forEach((backend, k) => {
      const named = k === 0 ? name : onBackend(name, backend)
      cases.push({ kind: 'zcio', backend, group, name: named, depth, len, offsets, poolSize: len, poolCount, make })
    })
  }

  node(GROUP_RAND_D1, FS_READ, 1, BLOCK, rand, () => fsReadCallback(fd, BLOCK, 1))
  node(GROUP_RAND_D1, FH_READ, 1, BLOCK, rand, () => fileHandleRead(handle, BLOCK, 1))
  node(GROUP_RAND_D1, READ_SYNC, 1, BLOCK, rand, () => readSync(fd, BLOCK))
  zcio(GROUP_RAND_D1, ZCIO_PROMISE, 1, BLOCK, rand, RANDOM_DEPTH, (pool, idx) => zcioPromise(pool, fd, BLOCK, idx.slice(0, 1)))

  node(GROUP_RAND_D64, FS_READ, RANDOM_DEPTH, BLOCK, rand, () => fsReadCallback(fd, BLOCK, RANDOM_DEPTH))
  node(GROUP_RAND_D64, FH_READ, RANDOM_DEPTH, BLOCK, rand, () => fileHandleRead(handle, BLOCK, RANDOM_DEPTH))
  node(GROUP_RAND_D64, READ_SYNC, 'sync', BLOCK, rand, () => readSync(fd, BLOCK))
  zcio(GROUP_RAND_D64, ZCIO_PROMISE, RANDOM_DEPTH, BLOCK, rand, RANDOM_DEPTH, (pool, idx) => zcioPromise(pool, fd, BLOCK, idx))
  zcio(GROUP_RAND_D64, ZCIO_BATCH, RANDOM_DEPTH, BLOCK, rand, RANDOM_DEPTH, (pool, idx) => zcioBatch(pool, fd, BLOCK, idx))

  node(GROUP_SEQ, FS_READ, 1, SEQ_BLOCK, seq, () => fsReadCallback(fd, SEQ_BLOCK, 1))
  node(GROUP_SEQ, FS_READ, SEQ_DEPTH, SEQ_BLOCK, seq, () => fsReadCallback(fd, SEQ_BLOCK, SEQ_DEPTH))
  node(GROUP_SEQ, READ_SYNC, 1, SEQ_BLOCK, seq, () => readSync(fd, SEQ_BLOCK))
  zcio(GROUP_SEQ, ZCIO_PROMISE, SEQ_DEPTH, SEQ_BLOCK, seq, SEQ_DEPTH, (pool, idx) => zcioPromise(pool, fd, SEQ_BLOCK, idx))
  zcio(GROUP_SEQ, ZCIO_BATCH, SEQ_DEPTH, SEQ_BLOCK, seq, SEQ_DEPTH, (pool, idx) => zcioBatch(pool, fd, SEQ_BLOCK, idx))
  return cases
}

interface MeasureContext {
  durationMs: number
  progress: Progress
  step: number
  steps: number
  zcio: ZcioStatus
  ring: Ring | null
  fd: number
}

async function measureCase(c: Case, ctx: MeasureContext): Promise<Measured> {
  const { durationMs, progress } = ctx
  const label = `[${ctx.step}/${ctx.steps}] ${c.group} > ${c.name} ${c.depth === 'sync' ? 'sync' : 'd' + c.depth}`
  const durationSec = durationMs / 1000
  let pool: RegisteredBufferPool | null = null
  const acquired: number[] = []
  let heapBefore = 0
  const next = c.offsets()
  progress.line(`${label} ...`)
  try {
    let body: Body
    if (c.kind === 'zcio') {
      if (!ctx.zcio.lib || !ctx.ring) return { skipped: true, reason: ctx.zcio.reason || 'zcio unavailable' }
      try {
        pool = new ctx.zcio.lib.RegisteredBufferPool(ctx.ring, c.poolSize, c.poolCount)
      } catch (e) {
        const code = errorCode(e)
        const message = errorMessage(e)
        const hint = code === 'ENOMEM' && !/ulimit/.test(message) ? ' (raise `ulimit -l`)' : ''
        return {
          skipped: true,
          reason: `new RegisteredBufferPool(${c.poolSize}, ${c.poolCount}) failed: ${code ? code + ': ' : ''}${message}${hint}`,
        }
      }
      for (let i = 0; i < c.poolCount; i++) acquired.push(pool.acquire().index)
      await verifyPool(pool, ctx.fd, c.len, acquired, next)
      body = c.make(pool, acquired)
      heapBefore = heapUsed()
    } else {
      body = c.make()
    }

    progress.update(`${label}  warm-up`)
    await body(new Meter(WARMUP_MS, null), next)

    const paint = (m: Meter, now: number): void =>
      progress.update(`${label}  ${((now - m.start) / 1000).toFixed(1)}/${durationSec} s  ${fmtInt(m.ops)} ops`)
    const m = new Meter(durationMs, paint)
    await body(m, next)
    const elapsedSec = (performance.now() - m.start) / 1000
    progress.clear()

    const opsPerSec = m.ops / elapsedSec
    const r: CaseResult = {
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
    if (c.kind === 'zcio') {
      r.heapDeltaBytes = heapUsed() - heapBefore
      r.backend = c.backend
    }
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

const NOMINAL_DEPTH: Record<Group, number> = { [GROUP_RAND_D1]: 1, [GROUP_RAND_D64]: RANDOM_DEPTH, [GROUP_SEQ]: SEQ_DEPTH }

// The group's fs.read (callback) at the same depth, or at the group's nominal
// depth when none matches (readSync at "sync").
function fsReadBase(results: readonly CaseResult[], group: Group, depth: Depth): CaseResult | undefined {
  const fsReads = results.filter((x) => x.group === group && x.name === FS_READ)
  return fsReads.find((x) => x.depth === depth) || fsReads.find((x) => x.depth === NOMINAL_DEPTH[group])
}

/** The group's tuned fio run, the reference of the "vs fio" ratios. */
export function fioReference(fio: FioReport | null, group: Group): FioRun | undefined {
  return fio?.runs.find((x) => x.group === group && x.variant === 'tuned' && x.iops !== undefined && x.iops > 0)
}

function addRatios(results: CaseResult[], fio: FioReport | null): void {
  for (const r of results) {
    const base = fsReadBase(results, r.group, r.depth)
    if (base && base.opsPerSec > 0) r.ratioToFsRead = r.opsPerSec / base.opsPerSec
    const ref = fioReference(fio, r.group)
    if (ref?.iops) r.ratioToFio = r.opsPerSec / ref.iops
  }
  for (const f of fio?.runs ?? []) {
    if (f.iops === undefined) continue
    const base = fsReadBase(results, f.group, f.depth)
    f.ratioToFsRead = base && base.opsPerSec > 0 ? f.iops / base.opsPerSec : null
    const ref = fioReference(fio, f.group)
    f.ratioToFio = ref?.iops ? f.iops / ref.iops : null
  }
}
