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
}

const MiB = 1024 * 1024

netTest('load: 1000 connections echo through one group of 256 buffers with no error and bounded memory', (t) => {
  const seconds = Number(process.env.ZCIO_LOAD_SECONDS ?? 30)
  const script = path.join(import.meta.dirname, 'load-run.js')
  // 2000 descriptors in one process: raise the soft limit (often 1024) to the hard one first.
  const res = spawnSync('bash', ['-c', `ulimit -n $(ulimit -Hn) && exec "${process.execPath}" --expose-gc "${script}"`], {
    encoding: 'utf8',
    env: { ...process.env, ZCIO_LOAD_SECONDS: String(seconds) },
    timeout: (seconds + 60) * 1000,
  })
  t.is(res.status, 0, res.stderr)
  const r = JSON.parse(res.stdout.trim().split('\n').pop()!) as LoadResult
  t.is(r.errors, 0, r.firstError)
  t.is(r.conns, 1000)
  t.true(r.messages > 10 * r.conns, `only ${r.messages} messages`)
  // Bounded memory: after the first seconds (connections up, pools warm) RSS
  // and the JS heap stop growing with the number of messages.
  const settle = Math.min(5, r.rss.length - 1)
  const rssGrowth = Math.max(...r.rss.slice(settle)) - r.rss[settle]
  const heapGrowth = Math.max(...r.heap.slice(settle)) - r.heap[settle]
  t.log(`${r.messages} echoes in ${r.seconds} s; RSS ${(r.rss[settle] / MiB).toFixed(0)} MiB +${(rssGrowth / MiB).toFixed(1)} MiB, heap +${(heapGrowth / MiB).toFixed(1)} MiB after ${settle} s`)
  t.true(rssGrowth < 64 * MiB, `RSS grew by ${(rssGrowth / MiB).toFixed(1)} MiB`)
})
