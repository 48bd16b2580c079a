// iperf3 on loopback: the reference of the stream case. A server
// (`iperf3 -s --forceflush`, which says when it listens) serves a warm-up
// client, then the measured one; both clients run with `-l 64K -n <bytes>
// -J` and their JSON gives the receiver's throughput and the CPU of both
// ends (`cpu_utilization_percent`: user + system from getrusage over the
// test).

import { spawn, spawnSync } from 'node:child_process'
import * as net from 'node:net'
import { errorMessage, shellJoin } from './common.js'
import { HOST } from './net-common.js'
import type { Cpu } from './net-common.js'

export interface Iperf3Outcome {
  /** Bytes the receiver counted. */
  bytes: number
  /** The receiver's seconds and bits per second. */
  seconds: number
  bitsPerSecond: number
  /** CPU seconds of the client (sender) and the server (receiver). */
  clientCpu: Cpu
  serverCpu: Cpu
}

/** `iperf3 --version`'s first line, or null when iperf3 is not installed. */
export function iperf3Version(): string | null {
  const r = spawnSync('iperf3', ['--version'], { encoding: 'utf8' })
  if (r.error || r.status !== 0) return null
  return (r.stdout || '').split('\n')[0].trim() || 'iperf3'
}

export function iperf3ClientArgs(port: number, bytes: number): string[] {
  return ['-c', HOST, '-p', String(port), '-l', '64K', '-n', String(bytes), '-J']
}

/** The command line of the measured client, for the report (the port varies). */
export function iperf3Command(bytes: number): string {
  return shellJoin(['iperf3', ...iperf3ClientArgs(5201, bytes)]).replace('-p 5201', '-p <port>')
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.on('error', reject)
    s.listen(0, HOST, () => {
      const a = s.address()
      const port = typeof a === 'object' && a ? a.port : 0
      s.close(() => resolve(port))
    })
  })
}

interface Iperf3Json {
  error?: string
  end?: {
    sum_received?: { bytes: number; seconds: number; bits_per_second: number }
    cpu_utilization_percent?: { host_user: number; host_system: number; remote_user: number; remote_system: number }
  }
}

function run(args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('iperf3', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')))
    child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')))
    const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('error', (e) => {
      clearTimeout(killer)
      reject(e)
    })
    child.on('close', (code, signal) => {
      clearTimeout(killer)
      if (code === 0) return resolve(out)
      let why = err.trim().split('\n').slice(-1)[0] || (signal ? `killed by ${signal}` : `exit code ${code}`)
      try {
        why = (JSON.parse(out) as Iperf3Json).error ?? why
      } catch {}
      reject(new Error(`iperf3 client: ${why}`))
    })
  })
}

function parse(text: string): Iperf3Outcome {
  let json: Iperf3Json
  try {
    json = JSON.parse(text) as Iperf3Json
  } catch (e) {
    throw new Error(`cannot parse iperf3 output: ${errorMessage(e)}`)
  }
  const r = json.end?.sum_received
  const cpu = json.end?.cpu_utilization_percent
  if (!r || !cpu || !(r.seconds > 0)) throw new Error(`iperf3 output without results${json.error ? ': ' + json.error : ''}`)
  // iperf3's CPU figures are percent of the test's wall time.
  return {
    bytes: r.bytes,
    seconds: r.seconds,
    bitsPerSecond: r.bits_per_second,
    clientCpu: { user: (cpu.host_user / 100) * r.seconds, system: (cpu.host_system / 100) * r.seconds },
    serverCpu: { user: (cpu.remote_user / 100) * r.seconds, system: (cpu.remote_system / 100) * r.seconds },
  }
}

/** A server, a warm-up client of `warmBytes`, then the measured client of `bytes`. */
export async function runIperf3(warmBytes: number, bytes: number, timeoutMs: number, onPhase: (phase: string) => void): Promise<Iperf3Outcome> {
  const port = await freePort()
  const server = spawn('iperf3', ['-s', '-p', String(port), '-B', HOST, '--forceflush'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let serverOut = ''
  const exited = new Promise<void>((resolve) => server.on('close', () => resolve()))
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('iperf3 server did not start within 10 s')), 10_000)
      server.on('error', reject)
      server.on('close', (code) => reject(new Error(`iperf3 server exited (${code}): ${serverOut.trim().slice(-300)}`)))
      const watch = (d: Buffer): void => {
        serverOut += d.toString('utf8')
        if (/Server listening/.test(serverOut)) {
          clearTimeout(timer)
          resolve()
        }
      }
      server.stdout.on('data', watch)
      server.stderr.on('data', watch)
    })
    onPhase('warm-up')
    parse(await run(iperf3ClientArgs(port, warmBytes), timeoutMs))
    onPhase('measuring')
    return parse(await run(iperf3ClientArgs(port, bytes), timeoutMs))
  } finally {
    server.kill('SIGTERM')
    const timer = setTimeout(() => server.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }
}
