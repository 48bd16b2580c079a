// ferrings (https://github.com/avifenesh/ferrings), a Node TCP server over
// io_uring, as a reference row of the `zcio bench net` echo group: its
// Node-style facade (`createTcpServer`, `connection.on('data')`,
// `connection.write()`) serves the echo, and the node:net client of the
// other rows drives it (ferrings has no client). The bench never installs
// it: it uses the copy ZCIO_BENCH_FERRINGS names, else the `ferrings`
// package the current directory resolves, else it says how to get one.

import * as fs from 'node:fs'
import * as path from 'node:path'
import { HOST } from './net-common.js'

export const FERRINGS_ENV = 'ZCIO_BENCH_FERRINGS'
export const FERRINGS_NAME = 'ferrings (server; node:net client)'
/** How to get a copy (x64 glibc; on arm64 the addon's name says linux-arm64-gnu): build it, then point ZCIO_BENCH_FERRINGS at its folder. */
export const FERRINGS_HOWTO =
  'git clone https://github.com/avifenesh/ferrings && cd ferrings && cargo build --release && ' +
  `cp target/release/libferrings.so ferrings.linux-x64-gnu.node && export ${FERRINGS_ENV}=$PWD`

/** A copy of ferrings to load: the folder to `require`, and its package version. */
export interface FerringsCopy {
  dir: string
  version: string
}

/** ZCIO_BENCH_FERRINGS's folder, else the `ferrings` package resolved from the cwd; the reason when neither is there (FERRINGS_HOWTO follows it). */
export function findFerrings(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): FerringsCopy | { reason: string } {
  const set = env[FERRINGS_ENV]
  let pkg: string
  if (set) {
    const dir = path.resolve(cwd, set)
    pkg = path.join(dir, 'package.json')
    if (!fs.existsSync(pkg)) return { reason: `not found (${FERRINGS_ENV}=${set} holds no package.json); to get it:` }
  } else {
    try {
      pkg = require.resolve('ferrings/package.json', { paths: [cwd] })
    } catch {
      return { reason: `not found (${FERRINGS_ENV} is not set, and no ferrings package here); to get it:` }
    }
  }
  let version = '?'
  try {
    version = String((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version?: unknown }).version ?? '?')
  } catch {
    // A version is only shown; the load in the peer decides.
  }
  return { dir: path.dirname(pkg), version }
}

// The part of ferrings' facade the echo uses.
interface FerringsConnection {
  write(data: Buffer): boolean
  on(event: 'data', listener: (data: Buffer) => void): unknown
}
interface FerringsInfo {
  port: number
  commandQueueDrops: number
  eventQueueDrops: number
  sendQueueDrops: number
}
interface FerringsServer {
  listen(port: number, host: string, callback: (info: FerringsInfo) => void): unknown
  info(): FerringsInfo | null
}
interface Ferrings {
  createTcpServer(options: { host: string; port: number; tcpNoDelay: boolean }, listener: (c: FerringsConnection) => void): FerringsServer
}

/**
 * Loads ferrings from `dir` and starts its echo server on the loopback;
 * resolves its port. A dropped event or send (ferrings counts them; a full
 * queue drops, it does not wait) would lose messages: `onError` then.
 */
export function ferringsEchoServer(dir: string, onError: (message: string) => void): Promise<number> {
  const ferrings = require(dir) as Ferrings
  return new Promise((resolve) => {
    const srv = ferrings.createTcpServer({ host: HOST, port: 0, tcpNoDelay: true }, (c) => {
      c.on('data', (d) => {
        // false: ferrings' command queue is full and the reply is dropped.
        if (!c.write(d)) onError('ferrings refused a write (its command queue is full)')
      })
    })
    srv.listen(0, HOST, (info) => resolve(info.port))
    setInterval(() => {
      const i = srv.info()
      const dropped = i ? i.commandQueueDrops + i.eventQueueDrops + i.sendQueueDrops : 0
      if (dropped > 0) onError(`ferrings dropped ${dropped} event(s) or send(s) (its queues were full)`)
    }, 200).unref()
  })
}
