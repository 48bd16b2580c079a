import { spawnSync } from 'node:child_process'
import * as path from 'node:path'
import { needs } from './support.js'

const netTest = needs('bufRing')

interface LoadResult {
  conns: number
  seconds: number
  messages: number
  errors: number
  firstError?: string
  rss: number[]
  heap: number[]
  heapTotal: number[]
}

const MiB = 1024 * 1024

netTest('load: 1000 connections echo through one group of 256 buffers with no error and bounded memory', (t) => {
  const seconds = Number(process.env.ZCIO_LOAD_SECONDS ?? 30)
  const script = path.join(import.meta.dirname, 'load-run.js')
  // 2000 descriptors in one process: raise the soft limit (often 1024) to the hard one first.
  // V8's young generation is capped as Node 20 and 22 cap it: from Node 24,
  // V8 grows it with the machine's memory, by up to some 100 MiB of RSS at
  // any time in the run, which would hide or fake a growth of zcio's memory.
  const res = spawnSync('bash', ['-c', `ulimit -n $(ulimit -Hn) && exec "${process.execPath}" --expose-gc --max-semi-space-size=16 "${script}"`], {
    encoding: 'utf8',
    env: { ...process.env, ZCIO_LOAD_SECONDS: String(seconds) },
    timeout: (seconds + 60) * 1000,
  })
  t.is(res.status, 0, res.stderr)
  const r = JSON.parse(res.stdout.trim().split('\n').pop()!) as LoadResult
  t.is(r.errors, 0, r.firstError)
  t.is(r.conns, 1000)
  t.true(r.messages > 10 * r.conns, `only ${r.messages} messages`)
  // Bounded memory: after the first seconds (connections up, pools warm)
  // neither RSS nor the JS heap in use (sampled after a collection) grows
  // with the number of messages.
  const settle = Math.min(5, r.rss.length - 1)
  const growth = (xs: number[]): number => Math.max(...xs.slice(settle)) - xs[settle]
  const mib = (x: number): string => (x / MiB).toFixed(1)
  t.log(
    `${r.messages} echoes in ${r.seconds} s; after ${settle} s: RSS ${mib(r.rss[settle])} MiB +${mib(growth(r.rss))}, ` +
      `heap in use +${mib(growth(r.heap))}, V8 heap held +${mib(growth(r.heapTotal))} MiB`,
  )
  t.true(growth(r.rss) < 64 * MiB, `RSS grew by ${mib(growth(r.rss))} MiB`)
  t.true(growth(r.heap) < 64 * MiB, `the JS heap in use grew by ${mib(growth(r.heap))} MiB`)
})
