// A peer process of the `zcio bench net` groups that measure `zcio.net`
// against `node:net` through code written for `node:net` (net-api-bench.ts):
// a server (an echo, or Node's http server fed by the module) or a client
// (pipelined echo over 16 connections, connection churn, ping-pong) on one
// module, picked by `impl`; or ferrings' echo server (net-ferrings.ts). The
// parent forks it with a JSON spec as argv[2].

import * as http from 'node:http'
import * as nodeNet from 'node:net'
import { loadZcio } from './common.js'
import { ferringsEchoServer } from './net-ferrings.js'
import type { ApiGroup, ApiPeerMessage, ApiPeerSpec } from './net-common.js'
import { API_CHURN_PARALLEL, API_ECHO_CONNECTIONS, API_ECHO_WINDOW, MESSAGE_BYTES } from './net-common.js'

type Net = typeof nodeNet

function post(m: ApiPeerMessage): void {
  process.send?.(m)
}

async function netOf(impl: 'zcio' | 'node'): Promise<Net> {
  if (impl === 'node') return nodeNet
  const z = await loadZcio()
  if (!z.lib) throw new Error(z.reason ?? 'zcio could not be loaded')
  return z.lib.net as unknown as Net
}

function server(net: Net, group: ApiGroup): void {
  let srv: nodeNet.Server
  if (group === 'http') {
    const hs = http.createServer((_req, res) => res.end('hello world'))
    srv = net.createServer({ noDelay: true }, (s) => hs.emit('connection', s))
  } else {
    srv = net.createServer({ noDelay: true }, (s) => {
      s.on('data', (d: Buffer) => s.write(d))
      s.on('end', () => s.end())
      s.on('error', () => s.destroy())
    })
  }
  srv.on('error', (e) => post({ type: 'error', message: e.message }))
  srv.listen(0, '127.0.0.1', () => post({ type: 'listening', port: (srv.address() as nodeNet.AddressInfo).port }))
  exitOnStop()
}

function exitOnStop(): void {
  process.on('message', (m: { type: string }) => {
    if (m.type === 'stop') process.exit(0)
  })
}

/** A server that fails later exits: its clients' connections break, and their error is the run's. */
function fail(message: string): never {
  post({ type: 'error', message })
  process.exit(1)
}

/** Runs `work` for `seconds` after `warm` seconds, returning how many operations it counted while measured. */
async function measured(seconds: number, warm: number, work: (count: () => void, stopped: () => boolean) => Promise<void>): Promise<{ ops: number; seconds: number }> {
  let ops = 0
  let on = false
  let stop = false
  let t0 = 0
  const running = work(
    () => {
      if (on) ops++
    },
    () => stop,
  )
  await new Promise((r) => setTimeout(r, warm * 1000))
  on = true
  t0 = performance.now()
  await new Promise((r) => setTimeout(r, seconds * 1000))
  on = false
  const took = (performance.now() - t0) / 1000
  stop = true
  await running
  return { ops, seconds: took }
}

/** 16 connections, each keeping 128 messages of 64 B in flight to the echo server. */
function echoClient(net: Net, port: number) {
  return async (count: () => void, stopped: () => boolean): Promise<void> => {
    const msg = Buffer.alloc(MESSAGE_BYTES, 0x6d)
    await Promise.all(
      Array.from(
        { length: API_ECHO_CONNECTIONS },
        () =>
          new Promise<void>((resolve, reject) => {
            const s = net.connect({ port, host: '127.0.0.1', noDelay: true } as nodeNet.NetConnectOpts)
            s.setNoDelay(true)
            let pending = 0
            s.on('connect', () => {
              for (let i = 0; i < API_ECHO_WINDOW; i++) s.write(msg)
            })
            s.on('data', (d: Buffer) => {
              pending += d.length
              for (; pending >= MESSAGE_BYTES; pending -= MESSAGE_BYTES) {
                count()
                if (!stopped()) s.write(msg)
              }
              if (stopped()) s.destroy()
            })
            s.on('error', reject)
            s.on('close', () => resolve())
          }),
      ),
    )
  }
}

/** 64 loops of: connect, send 4 bytes, take the 4-byte reply, close. */
function churnClient(net: Net, port: number) {
  return async (count: () => void, stopped: () => boolean): Promise<void> => {
    const one = (): Promise<void> =>
      new Promise((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1')
        s.on('connect', () => s.write('ping'))
        let got = 0
        s.on('data', (d: Buffer) => {
          got += d.length
          if (got >= 4) s.end()
        })
        s.on('error', reject)
        s.on('close', () => {
          if (got >= 4) count()
          resolve()
        })
      })
    await Promise.all(
      Array.from({ length: API_CHURN_PARALLEL }, async () => {
        while (!stopped()) await one()
      }),
    )
  }
}

/** One connection: 64 B out, 64 B back, the next. */
function pingPongClient(net: Net, port: number) {
  return (count: () => void, stopped: () => boolean): Promise<void> =>
    new Promise((resolve, reject) => {
      const msg = Buffer.alloc(MESSAGE_BYTES, 0x70)
      const s = net.connect(port, '127.0.0.1')
      s.setNoDelay(true)
      let pending = 0
      s.on('connect', () => s.write(msg))
      s.on('data', (d: Buffer) => {
        pending += d.length
        if (pending < MESSAGE_BYTES) return
        pending -= MESSAGE_BYTES
        count()
        if (stopped()) s.end()
        else s.write(msg)
      })
      s.on('error', reject)
      s.on('close', () => resolve())
    })
}

async function client(net: Net, group: ApiGroup, port: number, seconds: number, warm: number): Promise<void> {
  const work = group === 'echo' ? echoClient(net, port) : group === 'churn' ? churnClient(net, port) : pingPongClient(net, port)
  const cpu0 = process.cpuUsage()
  const r = await measured(seconds, warm, work)
  const cpu = process.cpuUsage(cpu0)
  post({ type: 'result', ops: r.ops, seconds: r.seconds, cpuSec: (cpu.user + cpu.system) / 1e6 })
  process.exit(0)
}

async function main(spec: ApiPeerSpec): Promise<void> {
  if (spec.impl === 'ferrings') {
    exitOnStop()
    return post({ type: 'listening', port: await ferringsEchoServer(spec.dir, fail) })
  }
  const net = await netOf(spec.impl)
  return spec.role === 'server' ? server(net, spec.group) : client(net, spec.group, spec.port, spec.seconds, spec.warm)
}

main(JSON.parse(process.argv[2] ?? '{}') as ApiPeerSpec)
  .catch((e: Error) => {
    post({ type: 'error', message: e.message })
    process.exit(1)
  })
