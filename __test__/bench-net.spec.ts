import test from 'ava'
import { execFile } from 'node:child_process'
import * as fs from 'node:fs'
import { createRequire } from 'node:module'
import * as path from 'node:path'
import { promisify } from 'node:util'
import { emulated, nativeOnly, needs, probed, root, tmpFile } from './support.js'

const run = promisify(execFile)
const require = createRequire(import.meta.url)

interface Case {
  group: string
  name: string
  impl: string
  sender?: string
}

interface Doc {
  config: { runs: number }
  results: { group: string; name: string; value: number; cpu: number; clientCpuSec: number; serverCpuSec: number; runs: { value: number; cpu: number }[] }[]
  skipped: { group: string; name: string; reason: string }[]
  bars: { bar: string; pass: boolean | null }[]
}

const netTest = emulated ? nativeOnly('the bench net runs', 'their time limits fit native speed, and they would measure the emulator') : needs('bufRing')

netTest('zcio bench net --quick measures every case, with positive numbers', async (t) => {
  t.timeout(120_000)
  const json = tmpFile('bench-net.json')
  const cli = path.join(root, 'dist', 'bin', 'zcio.js')
  // The zcio.net groups have a test of their own (below), to keep each run bounded.
  const { stdout } = await run(process.execPath, [cli, 'bench', 'net', '--quick', '--only', 'stream,ping-pong,pipelined', '--json', json], { timeout: 110_000, maxBuffer: 1 << 20 })
  const doc = JSON.parse(fs.readFileSync(json, 'utf8')) as Doc
  fs.rmSync(path.dirname(json), { recursive: true, force: true })

  const { NET_CASES } = require(path.join(root, 'dist', 'benches', 'net-common.js')) as { NET_CASES: Case[] }
  t.true(NET_CASES.length >= 9)
  for (const group of ['stream', 'ping-pong', 'pipelined']) {
    t.true(NET_CASES.some((c) => c.group === group && c.impl === 'zcio'), `${group}: no zcio case`)
    t.true(NET_CASES.some((c) => c.group === group && c.impl === 'node'), `${group}: no Node case`)
  }
  for (const c of NET_CASES) {
    const what = `${c.group} / ${c.name}`
    const r = doc.results.find((x) => x.group === c.group && x.name === c.name)
    if (!r) {
      // Only what this machine lacks may be skipped: iperf3, or zero-copy send.
      const s = doc.skipped.find((x) => x.group === c.group && x.name === c.name)
      t.truthy(s, `${what}: neither measured nor skipped`)
      const allowed = (c.impl === 'iperf3' && /not installed/.test(s!.reason)) || (c.sender === 'sendZc' && !probed.sendZc)
      t.true(allowed, `${what}: skipped: ${s!.reason}`)
      t.log(`${what}: skipped: ${s!.reason}`)
      continue
    }
    t.is(r.runs.length, doc.config.runs, what)
    for (const [k, v] of Object.entries({ value: r.value, cpu: r.cpu, clientCpuSec: r.clientCpuSec, serverCpuSec: r.serverCpuSec })) {
      t.true(Number.isFinite(v) && v > 0, `${what}: ${k} is ${v}`)
    }
    t.true(stdout.includes(c.name), `${what}: not in the table`)
  }
  t.true(doc.bars.length > 0)
  // Where both backends run, each has its bars, measured in the same run.
  const both = probed.backend === 'io_uring' && !['io_uring', 'epoll'].includes(process.env.ZCIO_BACKEND ?? '')
  for (const name of ['stream send(): Gbit/s vs Node net', 'pipelined 64 B: msgs/s vs Node net', 'ping-pong 64 B: round trip vs Node net']) {
    for (const text of both ? [name, `epoll ${name}`] : []) {
      const b = doc.bars.find((x) => x.bar === text)
      t.truthy(b, `no bar ${text}`)
      t.not(b?.pass ?? null, null, `${text}: not measured`)
    }
  }
  t.regex(stdout, /summary/)
})

netTest('zcio bench net --quick --only http,echo,churn,net-ping-pong measures zcio.net and node:net in each group, with bars', async (t) => {
  t.timeout(120_000)
  const json = tmpFile('bench-net-api.json')
  const cli = path.join(root, 'dist', 'bin', 'zcio.js')
  const { stdout } = await run(process.execPath, [cli, 'bench', 'net', '--quick', '--only', 'http,echo,churn,net-ping-pong', '--json', json], { timeout: 110_000, maxBuffer: 1 << 20 })
  const doc = JSON.parse(fs.readFileSync(json, 'utf8')) as { api: { results: { group: string; impl: string; value: number; runs: unknown[] }[]; skipped: { group: string; reason: string }[] }; bars: { bar: string; pass: boolean | null }[] }
  fs.rmSync(path.dirname(json), { recursive: true, force: true })
  for (const group of ['http', 'echo', 'churn', 'net-ping-pong']) {
    const skipped = doc.api.skipped.find((s) => s.group === group)
    if (skipped) {
      // Only wrk may be missing.
      t.is(group, 'http', `${group}: skipped: ${skipped.reason}`)
      t.regex(skipped.reason, /wrk is not installed/)
      t.log(`${group}: skipped: ${skipped.reason}`)
      continue
    }
    for (const impl of ['zcio', 'node']) {
      const r = doc.api.results.find((x) => x.group === group && x.impl === impl)
      t.truthy(r, `${group} / ${impl}: not measured`)
      t.true(Number.isFinite(r!.value) && r!.value > 0, `${group} / ${impl}: ${r!.value}`)
      t.is(r!.runs.length, 1)
    }
    t.regex(stdout, new RegExp(`${group}: `))
  }
  for (const name of ['echo, pipelined 64 B x16: msgs/s', 'connection churn: conns/s', 'ping-pong 64 B: round trip']) {
    const b = doc.bars.find((x) => x.bar === `zcio.net ${name} vs node:net`)
    t.truthy(b, `no bar for ${name}`)
    t.not(b?.pass ?? null, null, `${name}: not measured`)
  }
  t.regex(stdout, /summary/)
})

netTest('zcio bench net --only runs the named groups alone; a bad group is a usage error; --check', async (t) => {
  t.timeout(100_000)
  const json = tmpFile('bench-net-only.json')
  const cli = path.join(root, 'dist', 'bin', 'zcio.js')
  // --check with the bars held 1000x as loose: every measured bar is met, exit 0.
  const { stdout } = await run(
    process.execPath,
    [cli, 'bench', 'net', '--only', 'ping-pong', '--runs', '1', '--round-trips', '300', '--json', json, '--check', '--bar-scale', '0.001'],
    { timeout: 55_000 },
  )
  t.regex(stdout, /check: pass: all \d+ measured bars met/)
  const doc = JSON.parse(fs.readFileSync(json, 'utf8')) as Doc
  fs.rmSync(path.dirname(json), { recursive: true, force: true })
  t.true(doc.results.length >= 2)
  t.deepEqual([...new Set(doc.results.map((r) => r.group))], ['ping-pong'])
  for (const r of doc.results) t.true(r.value > 0, r.name)
  const bad = await run(process.execPath, [cli, 'bench', 'net', '--only', 'stream,nope']).then(
    () => null,
    (e: { code: number; stderr: string }) => e,
  )
  t.truthy(bad)
  t.regex(bad!.stderr, /--only: expected groups among stream, ping-pong, pipelined, http, echo, churn, net-ping-pong/)
  // Held 1000x as strict, the bars miss: --check exits 1 and names them.
  const missed = await run(process.execPath, [cli, 'bench', 'net', '--only', 'ping-pong', '--runs', '1', '--round-trips', '300', '--check', '--bar-scale', '1000'], {
    timeout: 55_000,
  }).then(
    () => null,
    (e: { code: number; stdout: string }) => e,
  )
  t.is(missed?.code, 1)
  t.regex(missed?.stdout ?? '', /check: MISS: \d+ of \d+ measured bars missed[\s\S]*ping-pong 64 B: round trip vs Node net: [\d.]+x, needs <= 0\.00(060|10)x/)
})
