// The differential harness of the zcio.net specs: a scenario runs once on
// node:net (the oracle) and once on zcio.net, both sides on the one module,
// and reports what it saw as a log of events; the two logs must be equal.

import type { ExecutionContext } from 'ava'
import * as nodeNet from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { zcio } from './support.js'

/** The part of a `net` module a scenario uses. */
export type Net = typeof nodeNet

/** zcio.net, typed as node:net: the differential tests hold it to that. */
export const zcioNet = zcio.net as unknown as Net

/**
 * What a scenario records: `[who, event, ...what matters of its arguments]`.
 * Events of one side (one `who`) are in a fixed order; between sides they
 * interleave as the scheduler has it, so logs compare side by side.
 */
export type Log = [string, ...unknown[]][]

function bySide(log: Log): Record<string, unknown[][]> {
  const out: Record<string, unknown[][]> = {}
  for (const [who, ...rest] of log) (out[who] ??= []).push(rest)
  return out
}

/** Runs `scenario` on both modules and compares the logs side by side; returns zcio's. */
export async function differential(t: ExecutionContext, scenario: (net: Net, log: Log) => Promise<void>): Promise<Record<string, unknown[][]>> {
  const oracle: Log = []
  await scenario(nodeNet, oracle)
  const ours: Log = []
  await scenario(zcioNet, ours)
  const o = bySide(ours)
  t.deepEqual(o, bySide(oracle))
  return o
}

/** A server of `net` listening on 127.0.0.1, and its port. */
export function listen(net: Net, options: nodeNet.ServerOpts, onSocket: (s: nodeNet.Socket) => void): Promise<{ server: nodeNet.Server; port: number }> {
  const server = net.createServer(options, onSocket)
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve({ server, port: (server.address() as nodeNet.AddressInfo).port })
    })
  })
}

/** Resolves once `server` emitted 'close'. */
export function closed(server: nodeNet.Server): Promise<void> {
  return new Promise((r) => server.close(() => r()))
}

/** Resolves once `s` emitted 'close'. */
export function socketClosed(s: nodeNet.Socket): Promise<boolean> {
  return new Promise((r) => s.once('close', r))
}

/**
 * Records `s`'s events into `log` as `[who, event]`: the data received as
 * one `[who, 'data', text]` before 'end' (or 'close' when no end came),
 * since chunk boundaries and their timing against the write side's events
 * differ between implementations and runs; errors by code, close with
 * hadError.
 */
export function record(s: nodeNet.Socket, who: string, log: Log): void {
  let data: string | undefined
  const flush = (): void => {
    if (data !== undefined) log.push([who, 'data', data])
    data = undefined
  }
  s.on('data', (d: Buffer | string) => {
    data = (data ?? '') + String(d)
  })
  for (const ev of ['connect', 'ready', 'finish', 'timeout']) s.on(ev, () => log.push([who, ev]))
  s.on('end', () => {
    flush()
    log.push([who, 'end'])
  })
  s.on('error', (e: NodeJS.ErrnoException) => log.push([who, 'error', e.code]))
  s.on('close', (hadError: boolean) => {
    flush()
    log.push([who, 'close', hadError])
  })
}

/** A fresh Unix socket path in the temp directory. */
export function socketPath(tag: string): string {
  return path.join(os.tmpdir(), `zcio-net-${tag}-${process.pid}-${Math.random().toString(36).slice(2)}.sock`)
}

export const turn = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** An address on `port` where connects hang: a listener (never accepting) with its one-entry queue filled. */
export async function stalled(port: number): Promise<{ host: string; close(): void }> {
  const ring = new zcio.Ring()
  const host = '127.0.0.2'
  const l = zcio.TcpListener.bind(ring, { host, port, backlog: 0 })
  const fillers = Array.from({ length: 2 }, () => nodeNet.connect(port, host).on('error', () => {}))
  await turn(100)
  return {
    host,
    close: () => {
      for (const f of fillers) f.destroy()
      l.close()
      ring.close()
    },
  }
}
