// RDMA send bandwidth, message rate and latency of zcio next to perftest's
// ib_send_bw / ib_send_lat on the same device, with the same parameters.
// Meant for the Soft-RoCE VM (`npm run bench:rdma`), or any machine with a
// device:
//
//   node dist/benches/rdma-bench.js [--device rxe0] [--gid 1] [--size 65536]
//     [--iters 2048] [--rate-iters 8192] [--lat-iters 1000] [--tx-depth 128]
//     [--rx-depth 512] [--mtu 4096] [--batch 64] [--spin 1000] [--runs 3] [--only bw,rate,lat]
//     [--json file]
//
// Like perftest, each case runs a server and a client process on the device
// (endpoints exchanged over TCP on 127.0.0.1):
// - bandwidth / message rate: the client keeps --tx-depth SENDs of --size
//   (then 64) bytes outstanding, posting as completions arrive; the server
//   keeps up to --rx-depth receives posted, re-posting as they complete. The
//   client measures from its first post to its last completion (perftest's
//   method), in MB/s of 2^20 bytes as perftest reports.
// - latency: 64-byte SEND ping-pong; half the median round trip (perftest's
//   t_typical).
// zcio first sends a tenth of the iterations untimed (JIT warm-up).
// Both sides busy-poll their completion queue, as perftest does; posts and
// polls go --batch work requests at a time (postSendBatch, postReceiveBatch,
// poll(max)). perftest runs with the same size, iterations, tx depth, rx
// depth and MTU, and its defaults otherwise (completion moderation: one
// signaled send in 100; inline sends of small messages for latency). Each
// case runs --runs times, zcio and perftest alternately; medians are
// reported with the ratio of the medians.

import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import { rdma } from 'zcio'

type Case = 'bw' | 'rate' | 'lat'

interface Args {
  device?: string
  gid: number
  size: number
  iters: number
  rateIters: number
  latIters: number
  txDepth: number
  rxDepth: number
  mtu: number
  batch: number
  spin: number
  runs: number
  only: Case[]
  json?: string
  // A child process's part (internal).
  role?: 'server' | 'client'
  case?: Case
  port?: number
}

function parse(argv: string[]): Args {
  const a: Args = {
    gid: 1,
    size: 65536,
    iters: 2048,
    rateIters: 8192,
    latIters: 1000,
    txDepth: 128,
    rxDepth: 512,
    mtu: 4096,
    batch: 64,
    spin: 1000,
    runs: 3,
    only: ['bw', 'rate', 'lat'],
  }
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1]
    const num = (): number => {
      i++
      const n = Number(v)
      if (!Number.isInteger(n) || n < 0) throw new Error(`${argv[i - 1]} needs a whole number, not ${v}`)
      return n
    }
    switch (argv[i]) {
      case '--device': a.device = v; i++; break
      case '--gid': a.gid = num(); break
      case '--size': a.size = num(); break
      case '--iters': a.iters = num(); break
      case '--rate-iters': a.rateIters = num(); break
      case '--lat-iters': a.latIters = num(); break
      case '--tx-depth': a.txDepth = num(); break
      case '--rx-depth': a.rxDepth = num(); break
      case '--mtu': a.mtu = num(); break
      case '--batch': a.batch = Math.max(1, num()); break
      case '--spin': a.spin = num(); break
      case '--runs': a.runs = num(); break
      case '--only': a.only = v.split(',') as Case[]; i++; break
      case '--json': a.json = v; i++; break
      case '--role': a.role = v as Args['role']; i++; break
      case '--case': a.case = v as Case; i++; break
      case '--port': a.port = num(); break
      default: throw new Error(`unknown option ${argv[i]}`)
    }
  }
  return a
}

const MB = 1 << 20
const DEADLINE_MS = 120_000
const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]

// --- child processes: one end of a zcio connection ------------------------

/** Newline-delimited JSON over a socket. */
function lines(sock: net.Socket): () => Promise<unknown> {
  let buf = ''
  const queue: string[] = []
  const waiting: ((s: string) => void)[] = []
  sock.setEncoding('utf8')
  sock.on('data', (d: string) => {
    buf += d
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      const w = waiting.shift()
      if (w) w(line)
      else queue.push(line)
    }
  })
  return () => {
    const l = queue.shift()
    return l !== undefined ? Promise.resolve(JSON.parse(l)) : new Promise((r) => waiting.push((s) => r(JSON.parse(s))))
  }
}

function write(sock: net.Socket, v: unknown): Promise<void> {
  return new Promise((resolve, reject) => sock.write(`${JSON.stringify(v)}\n`, (e) => (e ? reject(e) : resolve())))
}

async function connect(port: number): Promise<net.Socket> {
  for (let i = 0; ; i++) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => resolve(s))
        s.once('error', reject)
      })
    } catch (e) {
      if (i > 600) throw e
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}

function accept(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer((s) => {
      srv.close()
      resolve(s)
    })
    srv.once('error', reject)
    srv.listen(port, '127.0.0.1')
  })
}

function check(status: number, wrId: number): void {
  if (status !== 0) throw new Error(`work request ${wrId} failed: status ${status}`)
}

function overdue(t0: number): void {
  if (Date.now() - t0 > DEADLINE_MS) throw new Error('timed out')
}

async function child(a: Args): Promise<void> {
  SPIN = a.spin
  const c = a.case!
  const ctx = rdma.open(a.device)
  const pd = ctx.allocPd()
  const lat = c === 'lat'
  const size = c === 'bw' ? a.size : 64
  const iters = c === 'bw' ? a.iters : c === 'rate' ? a.rateIters : a.latIters
  // Untimed messages first, so the JavaScript runs compiled (perftest's C
  // needs no warm-up); the server receives them too.
  const warm = Math.ceil(iters / 10)
  const total = warm + iters
  const sendDepth = lat ? 16 : a.role === 'client' ? a.txDepth : 1
  const recvDepth = lat ? 16 : a.role === 'server' ? Math.min(a.rxDepth, iters) : 1
  const cq = ctx.createCq(sendDepth + recvDepth)
  const prepared = pd.createQp(cq, cq, { maxSendWr: sendDepth, maxRecvWr: recvDepth, maxSge: 1, gidIndex: a.gid, pathMtu: a.mtu })
  // Every SEND reads, and every receive lands in, the same bytes (as perftest).
  const mr = pd.allocate(Math.max(size, 4096))
  const sock = a.role === 'server' ? await accept(a.port!) : await connect(a.port!)
  const next = lines(sock)
  const wc = new Float64Array(6 * a.batch)
  let result: Record<string, number> = {}
  if (a.role === 'server') {
    const remote = (await next()) as Parameters<typeof prepared.handshake>[0]
    const qp = prepared.handshake(remote)
    // Receives first: the client starts sending as soon as it has our endpoint.
    let posted = postRecvs(qp, mr, 0, size, 0, recvDepth)
    await write(sock, prepared.endpoint())
    const t0 = Date.now()
    let empty = 0
    if (!lat) {
      for (let got = 0; got < total; ) {
        const n = cq.pollInto(wc, SPIN)
        for (let i = 0; i < n; i++) check(wc[6 * i + 1], wc[6 * i])
        got += n
        const more = Math.min(n, total - posted)
        if (more > 0) posted += postRecvs(qp, mr, 0, size, posted, more)
        if (n === 0 && (++empty & 1023) === 0) overdue(t0)
      }
    } else {
      for (let i = 0, used = 0; i < total; i++) {
        for (let recv = false; !recv; ) {
          const n = cq.pollInto(wc, SPIN)
          for (let j = 0; j < n; j++) {
            check(wc[6 * j + 1], wc[6 * j])
            if (wc[6 * j + 2] === RECV) recv = true
          }
          if (n === 0 && (++empty & 1023) === 0) overdue(t0)
        }
        postSends(qp, mr, 0, size, i, 1)
        // Receives go back half a queue at a time, after the reply.
        if (posted - ++used <= recvDepth / 2) posted += postRecvs(qp, mr, 0, size, posted, recvDepth - (posted - used))
      }
    }
    await next() // the client is done
  } else {
    await write(sock, prepared.endpoint())
    const qp = prepared.handshake((await next()) as Parameters<typeof prepared.handshake>[0])
    if (!lat) {
      const start = Date.now()
      let polls = 0
      let empty = 0
      /** Sends `count` messages, keeping the send queue full: posts as many as complete. */
      const blast = (count: number): void => {
        let posted = postSends(qp, mr, 0, size, 0, Math.min(sendDepth, count))
        for (let done = 0; done < count; ) {
          const n = cq.pollInto(wc, SPIN)
          polls++
          for (let i = 0; i < n; i++) check(wc[6 * i + 1], wc[6 * i])
          done += n
          const more = Math.min(n, count - posted)
          if (more > 0) posted += postSends(qp, mr, 0, size, posted, more)
          if (n === 0 && (++empty & 1023) === 0) overdue(start)
        }
      }
      blast(warm)
      polls = empty = 0
      const t0 = process.hrtime.bigint()
      blast(iters)
      const sec = Number(process.hrtime.bigint() - t0) / 1e9
      result = { mbps: (size * iters) / sec / MB, rate: iters / sec, polls, empty, sec }
    } else {
      let empty = 0
      let posted = postRecvs(qp, mr, 2048, 2048 + size, 0, recvDepth)
      const start = Date.now()
      // One clock read around the loop: reading the clock is a system call
      // in the VM (HPET), as costly as a round trip's share of the work.
      let t0 = process.hrtime.bigint()
      for (let i = 0, used = 0; i < total; i++) {
        if (i === warm) t0 = process.hrtime.bigint()
        postSends(qp, mr, 0, size, i, 1)
        for (let recv = false; !recv; ) {
          const n = cq.pollInto(wc, SPIN)
          for (let j = 0; j < n; j++) {
            check(wc[6 * j + 1], wc[6 * j])
            if (wc[6 * j + 2] === RECV) recv = true
          }
          if (n === 0 && (++empty & 1023) === 0) overdue(start)
        }
        if (posted - ++used <= recvDepth / 2) posted += postRecvs(qp, mr, 2048, 2048 + size, posted, recvDepth - (posted - used))
      }
      // The mean one-way time (perftest's t_avg).
      result = { latency: Number(process.hrtime.bigint() - t0) / 1e3 / iters / 2 }
    }
    await write(sock, 'done')
    console.log(JSON.stringify(result))
  }
  sock.end()
}
/** Empty polls in native code per `pollInto` call before JavaScript sees none (--spin). */
let SPIN = 0

/** A receive's opcode in `pollInto`'s records. */
const RECV = 128
type Qp = ReturnType<ReturnType<ReturnType<typeof rdma.open>['allocPd']>['createQp']>['handshake'] extends (...x: never[]) => infer R ? R : never
type Mr = ReturnType<ReturnType<ReturnType<typeof rdma.open>['allocPd']>['allocate']>

const triples = new Float64Array(3 * 4096)

/** Fills `triples` with `count` entries of `mr[start..end]`, wrIds from `first`. */
function fill(start: number, end: number, first: number, count: number): Float64Array {
  for (let i = 0; i < count; i++) {
    triples[3 * i] = start
    triples[3 * i + 1] = end
    triples[3 * i + 2] = first + i
  }
  return triples.subarray(0, 3 * count)
}

/** `count` (at most 4096) SENDs of `mr[start..end]` in one post, wrIds from `first`; returns how many went. */
function postSends(qp: Qp, mr: Mr, start: number, end: number, first: number, count: number): number {
  return qp.postSendBatch(mr, fill(start, end, first, count))
}

/** `count` (at most 4096) receives into `mr[start..end]` in one post, wrIds from `first`; returns how many went. */
function postRecvs(qp: Qp, mr: Mr, start: number, end: number, first: number, count: number): number {
  return qp.postReceiveBatch(mr, fill(start, end, first, count))
}

// --- the parent: runs both ends, then perftest -----------------------------

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: DEADLINE_MS + 30_000 })
    let out = ''
    c.stdout.on('data', (d) => (out += d))
    c.stderr.on('data', (d) => (out += d))
    c.on('error', reject)
    c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${out}`))))
  })
}

function childArgs(a: Args, c: Case, role: string, port: number): string[] {
  // Node's own options (e.g. V8 flags) go to the children too.
  const args = [...process.execArgv, process.argv[1], '--role', role, '--case', c, '--port', String(port), '--gid', String(a.gid)]
  args.push('--size', String(a.size), '--iters', String(a.iters), '--rate-iters', String(a.rateIters), '--lat-iters', String(a.latIters))
  args.push('--tx-depth', String(a.txDepth), '--rx-depth', String(a.rxDepth), '--mtu', String(a.mtu), '--batch', String(a.batch), '--spin', String(a.spin))
  if (a.device) args.push('--device', a.device)
  return args
}

async function zcio(a: Args, c: Case, port: number): Promise<Record<string, number>> {
  const server = run(process.execPath, childArgs(a, c, 'server', port))
  const client = run(process.execPath, childArgs(a, c, 'client', port))
  const [out] = await Promise.all([client, server])
  return JSON.parse(out.trim().split('\n').pop()!)
}

/**
 * perftest's command lines for a case (the client adds the server's
 * address): for bandwidth and rate, its default (one work request per post)
 * and with a post list as long as zcio's batches (`-l`; perftest needs
 * the iterations to be a multiple of it); the better counts.
 */
function perftestArgs(a: Args, c: Case, port: number): [string, string[]][] {
  const common = ['-d', a.device ?? 'rxe0', '-x', String(a.gid), '-p', String(port), '-m', String(a.mtu), '-F']
  if (c === 'lat') return [['ib_send_lat', [...common, '-s', '64', '-n', String(a.latIters)]]]
  const [size, iters] = c === 'bw' ? [a.size, a.iters] : [64, a.rateIters]
  const bw = [...common, '-s', String(size), '-n', String(iters), '-t', String(a.txDepth), '-r', String(a.rxDepth)]
  return [
    ['ib_send_bw', bw],
    ['ib_send_bw', [...bw, '-l', String(a.batch)]],
  ]
}

async function perftest(a: Args, c: Case, port: number): Promise<Record<string, number>> {
  let best: Record<string, number> | undefined
  for (const [tool, args] of perftestArgs(a, c, port)) {
    const server = run(tool, args)
    server.catch(() => undefined) // awaited below
    await new Promise((r) => setTimeout(r, 1500))
    let out: string
    try {
      out = await run(tool, [...args, '127.0.0.1'])
      await server
    } catch (e) {
      if (!best) throw e
      process.stderr.write(` [post list failed: ${(e as Error).message.split('\n')[0]}]`)
      await server.catch(() => undefined)
      continue
    }
    const row = lastRow(out)
    // ib_send_bw: #bytes #iterations BW peak[MB/sec] BW average[MB/sec] MsgRate[Mpps]
    // ib_send_lat: #bytes #iterations t_min t_max t_typical t_avg ...
    const r: Record<string, number> = tool === 'ib_send_lat' ? { latency: row[5], typical: row[4] } : { mbps: row[3], rate: row[4] * 1e6 }
    process.stderr.write(` [${args.includes('-l') ? 'post list' : 'default'}: ${JSON.stringify(r)}]`)
    if (!best || (r.mbps ?? 0) > (best.mbps ?? 0)) best = r
  }
  return best!
}

/** The numbers of the last table row perftest prints. */
function lastRow(out: string): number[] {
  const rows = out.split('\n').filter((l) => /^\s*\d+\s+\d+\s+[\d.]+/.test(l))
  if (rows.length === 0) throw new Error(`no result row in:\n${out}`)
  return rows[rows.length - 1].trim().split(/\s+/).map(Number)
}

async function main(): Promise<void> {
  const a = parse(process.argv.slice(2))
  if (a.role) return child(a)
  const have = await run('which', ['ib_send_bw']).then(() => true, () => false)
  const metric: Record<Case, 'mbps' | 'rate' | 'latency'> = { bw: 'mbps', rate: 'rate', lat: 'latency' }
  const res: Record<string, { zcio: number[]; perftest: number[] }> = {}
  let port = 18700
  for (let i = 0; i < a.runs; i++) {
    for (const c of a.only) {
      res[c] ??= { zcio: [], perftest: [] }
      process.stderr.write(`run ${i + 1}/${a.runs}: ${c}: zcio`)
      res[c].zcio.push((await zcio(a, c, port++))[metric[c]])
      if (have) {
        process.stderr.write(', perftest')
        res[c].perftest.push((await perftest(a, c, port++))[metric[c]])
      }
      process.stderr.write(`: ${res[c].zcio.at(-1)!.toFixed(1)} vs ${res[c].perftest.at(-1)?.toFixed(1)}\n`)
    }
  }
  const names: Record<Case, string> = {
    bw: `send ${a.size} B bandwidth (MB/s)`,
    rate: '64 B message rate (msg/s)',
    lat: '64 B latency, one way, mean (us)',
  }
  console.log(`RDMA on ${a.device ?? 'the first device'}: medians of ${a.runs} runs, server and client processes, MTU ${a.mtu}, tx depth ${a.txDepth}, rx depth ${a.rxDepth}`)
  console.log('case'.padEnd(36), 'zcio'.padStart(12), 'perftest'.padStart(12), 'ratio'.padStart(8), '  runs (zcio / perftest)')
  const medians: Record<string, number[]> = {}
  for (const c of a.only) {
    const z = median(res[c].zcio)
    const p = res[c].perftest.length ? median(res[c].perftest) : NaN
    medians[c] = [z, p]
    const ratio = c === 'lat' ? p / z : z / p
    const runs = `${res[c].zcio.map((x) => x.toFixed(1)).join(' ')} / ${res[c].perftest.map((x) => x.toFixed(1)).join(' ')}`
    console.log(names[c].padEnd(36), z.toFixed(1).padStart(12), p.toFixed(1).padStart(12), ratio.toFixed(2).padStart(8), ` ${runs}`)
  }
  console.log('(ratio: zcio / perftest; for latency perftest / zcio, so above 1 is better for zcio everywhere)')
  for (const c of a.only) {
    for (const [tool, args] of perftestArgs(a, c, 18515)) console.log(`perftest ${c}: ${tool} ${args.join(' ')} [127.0.0.1]`)
  }
  if (!have) console.log('perftest not installed: ratios unavailable (apt-get install perftest)')
  if (a.json) fs.writeFileSync(a.json, JSON.stringify({ args: a, runs: res, medians }, null, 2))
}

main().catch((e: Error) => {
  console.error(e.stack ?? e)
  process.exit(1)
})
