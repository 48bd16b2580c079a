// RDMA send bandwidth and message rate of zcio next to perftest's
// ib_send_bw / ib_send_lat on the same device, in one run. Meant for the
// Soft-RoCE VM (`npm run bench:rdma`), or any machine with a device:
//
//   node dist/benches/rdma-bench.js [--device rxe0] [--gid 1] [--events] [--json file]
//
// zcio: two RC queue pairs of one process, SENDs of --size bytes (default
// 64 KiB) with a window of receives and sends in flight, then 64-byte SENDs
// for the message rate. perftest: server and client processes on the same
// device. Each case runs --runs times (default 3); medians are reported.

import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import { rdma } from 'zcio'

interface Args {
  /** Wait for completions through the completion channel only (no busy polling). */
  events: boolean
  device?: string
  gid: number
  size: number
  iters: number
  runs: number
  json?: string
}

function parse(argv: string[]): Args {
  const a: Args = { events: false, gid: 1, size: 65536, iters: 2000, runs: 3 }
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1]
    switch (argv[i]) {
      case '--device': a.device = v; i++; break
      case '--gid': a.gid = Number(v); i++; break
      case '--size': a.size = Number(v); i++; break
      case '--iters': a.iters = Number(v); i++; break
      case '--runs': a.runs = Number(v); i++; break
      case '--json': a.json = v; i++; break
      case '--events': a.events = true; break
      default: throw new Error(`unknown option ${argv[i]}`)
    }
  }
  return a
}

/**
 * The next completions of `cq`: busy-polled first, as perftest does by
 * default, then (or, with --events, only) through the completion channel.
 */
let spin = true
async function take(cq: { poll(max: number): WC[]; wait(max: number): Promise<WC[]> }, max: number): Promise<WC[]> {
  if (spin) {
    for (let i = 0; i < 200_000; i++) {
      const c = cq.poll(max)
      if (c.length > 0) return c
    }
  }
  return cq.wait(max)
}
type WC = { status: number; opcode: string }

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]

/** zcio: `iters` SENDs of `size` bytes from one QP to another; returns [MB/s, messages/s]. */
async function zcioSend(a: Args, size: number, iters: number): Promise<[number, number]> {
  const ctx = rdma.open(a.device)
  const pd = ctx.allocPd()
  const window = 64
  const cqS = ctx.createCq(window * 2)
  const cqR = ctx.createCq(window * 2)
  const ps = pd.createQp(cqS, cqS, { maxSendWr: window, maxRecvWr: window, maxSge: 1, gidIndex: a.gid })
  const pr = pd.createQp(cqR, cqR, { maxSendWr: window, maxRecvWr: window, maxSge: 1, gidIndex: a.gid })
  const s = ps.handshake(pr.endpoint())
  const r = pr.handshake(ps.endpoint())
  const src = pd.allocate(size)
  const dst = pd.allocate(size * window)
  // Rounds of `window` messages: receives, then sends, then every
  // completion of both queues.
  const t0 = process.hrtime.bigint()
  for (let done = 0; done < iters; ) {
    const n = Math.min(window, iters - done)
    for (let i = 0; i < n; i++) r.postReceive(dst, i * size, (i + 1) * size, i)
    for (let i = 0; i < n; i++) s.postSend(src, 0, size, i)
    for (let got = 0; got < n; ) got += check(await take(cqS, 64))
    for (let got = 0; got < n; ) got += check(await take(cqR, 64))
    done += n
  }
  const sec = Number(process.hrtime.bigint() - t0) / 1e9
  return [(size * iters) / sec / 1e6, iters / sec]
}

/** zcio: 64-byte ping-pong between two QPs; returns the one-way latency in µs. */
async function zcioLatency(a: Args, iters: number): Promise<number> {
  const ctx = rdma.open(a.device)
  const pd = ctx.allocPd()
  const cqA = ctx.createCq(8)
  const cqB = ctx.createCq(8)
  const pa = pd.createQp(cqA, cqA, { maxSendWr: 2, maxRecvWr: 2, maxSge: 1, gidIndex: a.gid })
  const pb = pd.createQp(cqB, cqB, { maxSendWr: 2, maxRecvWr: 2, maxSge: 1, gidIndex: a.gid })
  const qa = pa.handshake(pb.endpoint())
  const qb = pb.handshake(pa.endpoint())
  const mr = pd.allocate(4096)
  // Completions seen per queue and opcode: a wait for one kind must not
  // lose the other kind's completions.
  const seen = new Map<typeof cqA, Record<string, number>>([
    [cqA, {}],
    [cqB, {}],
  ])
  const until = async (cq: typeof cqA, op: string): Promise<void> => {
    const counts = seen.get(cq)!
    while (!counts[op]) {
      for (const c of await take(cq, 4)) counts[c.opcode] = (counts[c.opcode] ?? 0) + 1
    }
    counts[op]--
  }
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < iters; i++) {
    qb.postReceive(mr, 2048, 2112, 1)
    qa.postReceive(mr, 1024, 1088, 1)
    qa.postSend(mr, 0, 64, 2)
    await until(cqB, 'recv')
    qb.postSend(mr, 0, 64, 2)
    await until(cqA, 'recv')
    await until(cqA, 'send')
    await until(cqB, 'send')
  }
  return Number(process.hrtime.bigint() - t0) / 1e3 / iters / 2
}

function check(wcs: { status: number }[]): number {
  for (const c of wcs) if (c.status !== 0) throw new Error(`work request failed: status ${c.status}`)
  return wcs.length
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    c.stdout.on('data', (d) => (out += d))
    c.stderr.on('data', (d) => (out += d))
    c.on('error', reject)
    c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${code}: ${out}`))))
  })
}

/** perftest server + client on the device; returns the client's output. */
async function perftest(tool: string, a: Args, args: string[], port: number): Promise<string> {
  const common = ['-d', a.device ?? 'rxe0', '-x', String(a.gid), '-p', String(port), ...args]
  const server = run(tool, common)
  await new Promise((r) => setTimeout(r, 1500))
  const client = await run(tool, [...common, '127.0.0.1'])
  await server
  return client
}

/** The numbers of the last table row perftest prints. */
function lastRow(out: string): number[] {
  const rows = out.split('\n').filter((l) => /^\s*\d+\s+\d+\s+[\d.]+/.test(l))
  if (rows.length === 0) throw new Error(`no result row in:\n${out}`)
  return rows[rows.length - 1].trim().split(/\s+/).map(Number)
}

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2))
  spin = !a.events
  const have = await run('which', ['ib_send_bw']).then(() => true, () => false)
  const res: Record<string, number[]> = { zcioBw: [], zcioRate: [], perfBw: [], perfRate: [], perfLat: [], zcioLat: [] }
  for (let i = 0; i < a.runs; i++) {
    const step = (what: string): boolean => process.stderr.write(`run ${i + 1}/${a.runs}: ${what}\n`)
    step('zcio bandwidth')
    res.zcioBw.push((await zcioSend(a, a.size, a.iters))[0])
    step('zcio message rate')
    res.zcioRate.push((await zcioSend(a, 64, a.iters * 4))[1])
    step('zcio latency')
    res.zcioLat.push(await zcioLatency(a, 200))
    if (have) step('perftest')
    if (have) {
      // ib_send_bw: #bytes #iterations BW peak[MB/sec] BW average[MB/sec] MsgRate[Mpps]
      const bw = lastRow(await perftest('ib_send_bw', a, ['-s', String(a.size), '-n', String(a.iters), '-F'], 18700 + i))
      res.perfBw.push(bw[3])
      const rate = lastRow(await perftest('ib_send_bw', a, ['-s', '64', '-n', String(a.iters * 4), '-F'], 18710 + i))
      res.perfRate.push(rate[4] * 1e6)
      // ib_send_lat: #bytes #iterations t_min t_max t_typical t_avg ...
      const lat = lastRow(await perftest('ib_send_lat', a, ['-s', '64', '-n', '200', '-F'], 18720 + i))
      res.perfLat.push(lat[4])
    }
  }
  const m = Object.fromEntries(Object.entries(res).map(([k, v]) => [k, v.length ? median(v) : NaN]))
  const rows = [
    [`send ${a.size} B bandwidth (MB/s)`, m.zcioBw, m.perfBw],
    ['64 B message rate (msg/s)', m.zcioRate, m.perfRate],
  ]
  console.log(
    `RDMA on ${a.device ?? 'the first device'}, medians of ${a.runs} runs; zcio completions ${a.events ? 'from the completion channel (wait)' : 'busy-polled, then wait (as perftest polls)'}`,
  )
  console.log('case'.padEnd(36), 'zcio'.padStart(12), 'perftest'.padStart(12), 'ratio'.padStart(8))
  for (const [name, z, p] of rows as [string, number, number][]) {
    console.log(name.padEnd(36), z.toFixed(1).padStart(12), p.toFixed(1).padStart(12), (z / p).toFixed(2).padStart(8))
  }
  console.log(
    '64 B latency, one way (us)'.padEnd(36),
    m.zcioLat.toFixed(1).padStart(12),
    m.perfLat.toFixed(1).padStart(12),
    (m.zcioLat / m.perfLat).toFixed(2).padStart(8),
  )
  if (!have) console.log('perftest not installed: ratios unavailable (apt-get install perftest)')
  if (a.json) fs.writeFileSync(a.json, JSON.stringify({ args: a, runs: res, medians: m }, null, 2))
}

main().catch((e: Error) => {
  console.error(e.stack ?? e)
  process.exit(1)
})
