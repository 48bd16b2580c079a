// fio's io_uring engine on the bench file: the reference the zcio rows are
// compared with.

import { spawn, spawnSync } from 'node:child_process'
import { performance } from 'node:perf_hooks'
import { GROUP_RAND_D1, GROUP_RAND_D64, GROUP_SEQ, PAINT_MS, RANDOM_DEPTH, SEQ_DEPTH, errorMessage, shellJoin } from './common.js'
import type { FioRun, FioVariant, Group, Progress } from './common.js'
import { fmtInt } from './format.js'

export interface FioSpec {
  group: Group
  variant: FioVariant
  job: string
  rw: 'randread' | 'read'
  bs: string
  depth: number
  /** Options on top of the common ones. */
  tuning: readonly string[]
}

// What each tuned option saves:
// - gtod_reduce: no clock_gettime per I/O for latency stats (the bench only
//   reads IOPS and bandwidth);
// - norandommap, randrepeat=0: no bitmap of blocks already read, no repeatable
//   seed; offsets are uniform like the zcio rows' xorshift32 offsets;
// - fixedbufs: registered buffers (READ_FIXED), as zcio does;
// - registerfiles: a registered file, no fdget/fdput per I/O;
// - iomem=mmap: page-aligned buffers from mmap instead of malloc; the kernel's
//   page-cache copy into them is far faster for 1 MiB blocks;
// - iodepth_batch_submit/complete_max=64 at depth 64: submit and reap the
//   whole depth per io_uring_enter instead of one I/O, as readFixedBatch
//   does (16 or 32 per submit, or a complete_min, measured no better).
// sqthread_poll is left out: its kernel thread needs a second core, which
// the zcio rows do not use, and on a 2-vCPU machine it measured slower.
const COMMON_TUNING = ['--gtod_reduce=1', '--fixedbufs', '--registerfiles', '--iomem=mmap']
const RANDOM_TUNING = [...COMMON_TUNING, '--norandommap', '--randrepeat=0']

export const FIO_SPECS: readonly FioSpec[] = [
  { group: GROUP_RAND_D1, variant: 'tuned', job: 'rand', rw: 'randread', bs: '4k', depth: 1, tuning: RANDOM_TUNING },
  { group: GROUP_RAND_D1, variant: 'defaults', job: 'rand', rw: 'randread', bs: '4k', depth: 1, tuning: [] },
  {
    group: GROUP_RAND_D64,
    variant: 'tuned',
    job: 'rand',
    rw: 'randread',
    bs: '4k',
    depth: RANDOM_DEPTH,
    tuning: [...RANDOM_TUNING, '--iodepth_batch_submit=64', '--iodepth_batch_complete_max=64'],
  },
  { group: GROUP_RAND_D64, variant: 'defaults', job: 'rand', rw: 'randread', bs: '4k', depth: RANDOM_DEPTH, tuning: [] },
  { group: GROUP_SEQ, variant: 'tuned', job: 'seq', rw: 'read', bs: '1M', depth: SEQ_DEPTH, tuning: COMMON_TUNING },
  { group: GROUP_SEQ, variant: 'defaults', job: 'seq', rw: 'read', bs: '1M', depth: SEQ_DEPTH, tuning: [] },
]

/** The row name of a fio run. */
export function fioName(variant: FioVariant): string {
  return variant === 'tuned' ? 'fio io_uring tuned' : 'fio io_uring defaults'
}

export type FioOutcome = { iops: number; bwBytes: number; error?: undefined } | { error: string }

/** `fio --version`, or null when fio is not installed. */
export function fioVersion(): string | null {
  const r = spawnSync('fio', ['--version'], { encoding: 'utf8' })
  if (r.error || r.status !== 0) return null
  return (r.stdout || '').trim() || 'fio'
}

function fioRuntime(durationSec: number): string {
  return Number.isInteger(durationSec) ? String(durationSec) : `${Math.max(1, Math.round(durationSec * 1000))}ms`
}

export function fioArgs(spec: FioSpec, file: string, size: number, durationSec: number): string[] {
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
  args.push(...spec.tuning)
  return args
}

/** The parts of fio's JSON output read here. */
interface FioJson {
  jobs: { error?: number; read: { iops: number; bw_bytes: number; error?: number } }[]
}

function isFioJson(v: unknown): v is FioJson {
  if (typeof v !== 'object' || v === null || !('jobs' in v) || !Array.isArray(v.jobs) || v.jobs.length === 0) return false
  const job: unknown = v.jobs[0]
  if (typeof job !== 'object' || job === null || !('read' in job)) return false
  const read: unknown = job.read
  return typeof read === 'object' && read !== null && 'iops' in read && typeof read.iops === 'number' && 'bw_bytes' in read && typeof read.bw_bytes === 'number'
}

/** Runs fio with `args`, calling `onTick(elapsedSec)` while it runs; never rejects. */
export function runFio(args: readonly string[], durationSec: number, onTick: (elapsedSec: number) => void): Promise<FioOutcome> {
  return new Promise((resolve) => {
    const child = spawn('fio', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => err.push(d))
    const started = performance.now()
    const timer = setInterval(() => onTick((performance.now() - started) / 1000), PAINT_MS)
    const killer = setTimeout(() => child.kill('SIGKILL'), durationSec * 1000 + 60000)
    let settled = false
    const done = (result: FioOutcome): void => {
      if (settled) return
      settled = true
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
      let json: unknown
      try {
        json = JSON.parse(stdout.slice(stdout.indexOf('{'), stdout.lastIndexOf('}') + 1))
      } catch (e) {
        return done({ error: `cannot parse fio output: ${errorMessage(e)}` })
      }
      if (!isFioJson(json)) return done({ error: 'cannot parse fio output: no read results' })
      const job = json.jobs[0]
      if (job.read.error || job.error) return done({ error: `fio job error ${job.error}` })
      done({ iops: job.read.iops, bwBytes: job.read.bw_bytes })
    })
  })
}

export interface FioContext {
  file: string
  size: number
  durationSec: number
  progress: Progress
  step: number
  steps: number
  notes: string[]
}

/** Runs one fio spec with progress; failures are recorded in the run and in `notes`. */
export async function measureFio(spec: FioSpec, ctx: FioContext): Promise<FioRun> {
  const { progress, durationSec } = ctx
  const name = fioName(spec.variant)
  const args = fioArgs(spec, ctx.file, ctx.size, durationSec)
  const label = `[${ctx.step}/${ctx.steps}] ${spec.group} > ${name} d${spec.depth}`
  progress.line(`${label} ...`)
  const r = await runFio(args, durationSec, (elapsed) =>
    progress.update(`${label}  ${Math.min(elapsed, durationSec).toFixed(1)}/${durationSec} s`),
  )
  progress.clear()
  const entry: FioRun = { group: spec.group, name, variant: spec.variant, depth: spec.depth, command: shellJoin(['fio', ...args]) }
  if (r.error !== undefined) {
    entry.error = r.error
    ctx.notes.push(`${spec.group} / ${name}: fio failed: ${r.error}`)
    progress.line(`${label}: failed: ${r.error}`)
  } else {
    entry.iops = r.iops
    entry.bwBytes = r.bwBytes
    entry.gbPerSec = r.bwBytes / 1e9
    progress.line(`${label}: ${fmtInt(r.iops)} IOPS, ${(r.bwBytes / 1e9).toFixed(3)} GB/s`)
  }
  return entry
}

