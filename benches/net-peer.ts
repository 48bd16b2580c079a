// One end of a `zcio bench net` connection, in a process of its own (as
// iperf3 runs): the parent forks a server and a client with an IPC channel
// and drives them one connection at a time (a warm-up, then the measured
// one). Each end measures its own CPU (`process.cpuUsage()`: user + system
// of every thread) and reports it with its byte counts and times.
//
//   node net-peer.js '<PeerSpec as JSON>'
//
// Server → parent: `listening` (the port), then `served` per connection.
// Client → parent: `ready`; parent → client: `run` (how much), client →
// parent: `ran`. `exit` ends
// either; `error` reports a failure (the peer then exits with code 1).

import * as net from 'node:net'
import { performance } from 'node:perf_hooks'
import { errorMessage, loadZcio } from './common.js'
import type { RegisteredBufferPool, Ring, Zcio } from './common.js'
import { GROUP_COUNT, HOST, MESSAGE_BYTES, SEND_DEPTH, WINDOW, WRITE_BYTES } from './net-common.js'
import type { Cpu, Mode, ParentMessage, PeerMessage, PeerSpec, Sender } from './net-common.js'

function post(m: PeerMessage): void {
  process.send?.(m)
}

function fail(e: unknown): never {
  post({ type: 'error', message: errorMessage(e) })
  process.disconnect?.()
  process.exit(1)
}

/** CPU time since `start` (a `process.cpuUsage()`), in seconds. */
function cpuSince(start: NodeJS.CpuUsage): Cpu {
  const d = process.cpuUsage(start)
  return { user: d.user / 1e6, system: d.system / 1e6 }
}

/**
 * Keeps `depth` operations in flight until `count` have completed; slot `s`
 * (0..depth-1) is reused by the next operation once its previous one is done.
 */
function windowed(count: number, depth: number, start: (slot: number) => Promise<unknown>): Promise<void> {
  return new Promise((resolve, reject) => {
    let issued = 0
    let done = 0
    const onFail = (e: unknown): void => reject(e)
    const onDone = Array.from({ length: depth }, (_, slot) => (): void => {
      if (++done === count) resolve()
      else if (issued < count) issue(slot)
    })
    const issue = (slot: number): void => {
      issued++
      start(slot).then(onDone[slot], onFail)
    }
    if (count === 0) resolve()
    for (let s = 0; s < Math.min(depth, count); s++) issue(s)
  })
}

/** Counts what a server receives on one connection, and when. */
/** The JS heap in use after a full GC (the peers run with --expose-gc). */
function heapNow(): number {
  globalThis.gc?.()
  return process.memoryUsage().heapUsed
}

class Receipt {
  readonly #heap0 = heapNow()
  readonly #cpu0 = process.cpuUsage()
  #first = 0
  bytes = 0

  add(n: number): void {
    if (this.bytes === 0) this.#first = performance.now()
    this.bytes += n
  }

  done(): PeerMessage {
    const seconds = (performance.now() - this.#first) / 1000
    const cpu = cpuSince(this.#cpu0)
    return { type: 'served', bytes: this.bytes, seconds, cpu, heap: heapNow() - this.#heap0 }
  }
}

// ---------------------------------------------------------------------------
// Servers: count what arrives; in ping-pong, answer every 64 bytes with 64.

async function zcioServer(z: Zcio, mode: Mode, busyPoll = 0): Promise<void> {
  const ring = new z.Ring({ busyPoll })
  const group = new z.BufferGroup(ring, { groupId: 1, bufferSize: WRITE_BYTES, bufferCount: GROUP_COUNT })
  const listener = z.TcpListener.bind(ring, { host: HOST, port: 0 })
  post({ type: 'listening', port: listener.address.port ?? 0 })
  const reply = new Uint8Array(MESSAGE_BYTES)
  for (;;) {
    const conn = await listener.accept()
    if (!conn) return
    if (mode !== 'stream') conn.setNoDelay(true)
    const receipt = new Receipt()
    let pending = 0
    await new Promise<void>((resolve, reject) => {
      group.recvCallback(conn, {
        onChunk: (bufferId, _offset, length) => {
          group.put(bufferId)
          receipt.add(length)
          if (mode !== 'ping-pong') return
          for (pending += length; pending >= MESSAGE_BYTES; pending -= MESSAGE_BYTES) conn.write(reply)
        },
        onEnd: (error) => (error ? reject(error) : resolve()),
      })
    })
    const served = receipt.done()
    await conn.flush()
    await conn.close()
    post(served)
  }
}

async function nodeServer(mode: Mode): Promise<void> {
  const reply = Buffer.alloc(MESSAGE_BYTES)
  const server = net.createServer((socket) => {
    if (mode !== 'stream') socket.setNoDelay(true)
    const receipt = new Receipt()
    let pending = 0
    socket.on('data', (chunk: Buffer) => {
      receipt.add(chunk.length)
      if (mode !== 'ping-pong') return
      for (pending += chunk.length; pending >= MESSAGE_BYTES; pending -= MESSAGE_BYTES) socket.write(reply)
    })
    socket.on('end', () => {
      const served = receipt.done()
      socket.end()
      post(served)
    })
    socket.on('error', fail)
  })
  server.on('error', fail)
  await new Promise<void>((resolve) => server.listen(0, HOST, resolve))
  const address = server.address()
  post({ type: 'listening', port: typeof address === 'object' && address ? address.port : 0 })
}

// ---------------------------------------------------------------------------
// Clients: one connection per `run`.

type Run = (amount: number) => Promise<PeerMessage>

function zcioClient(z: Zcio, mode: Mode, sender: Sender, port: number, busyPoll = 0): Run {
  const ring: Ring = new z.Ring({ busyPoll })
  const group = mode === 'ping-pong' ? new z.BufferGroup(ring, { groupId: 2, bufferSize: 4096, bufferCount: 16 }) : null
  let pool: RegisteredBufferPool | null = null
  if (sender === 'sendZc') {
    pool = new z.RegisteredBufferPool(ring, WRITE_BYTES, SEND_DEPTH)
    for (let i = 0; i < SEND_DEPTH; i++) pool.acquire().buffer.fill(0x5a)
  }
  const block = new Uint8Array(WRITE_BYTES).fill(0x5a)
  const message = new Uint8Array(MESSAGE_BYTES).fill(0x6d)
  return async (amount) => {
    const heap0 = heapNow()
    const cpu0 = process.cpuUsage()
    const conn = await z.TcpStream.connect(ring, { host: HOST, port })
    if (mode !== 'stream') conn.setNoDelay(true)
    const t0 = performance.now()
    let t1 = t0
    if (mode === 'stream' && pool) {
      const p = pool
      await windowed(amount / WRITE_BYTES, SEND_DEPTH, (slot) => conn.sendZc({ pool: p, index: slot }))
    } else if (mode === 'stream') {
      await windowed(amount / WRITE_BYTES, SEND_DEPTH, () => conn.send(block))
    } else if (mode === 'pipelined') {
      // write(): no promise per message; consecutive writes go out as one
      // send. drained() is the backpressure, flush() reports errors.
      for (let i = 0; i < amount; i++) if (!conn.write(message)) await conn.drained()
      await conn.flush()
    } else {
      // Ping-pong: the next message goes when the whole reply is in.
      await new Promise<void>((resolve, reject) => {
        let sent = 0
        let received = 0
        const next = (): void => {
          sent++
          conn.write(message)
        }
        group!.recvCallback(conn, {
          onChunk: (bufferId, _offset, length) => {
            group!.put(bufferId)
            received += length
            if (received < sent * MESSAGE_BYTES) return
            if (sent < amount) next()
            else {
              t1 = performance.now()
              conn.shutdown('write')
            }
          },
          onEnd: (error) =>
            error ? reject(error) : sent === amount ? conn.flush().then(resolve, reject) : reject(new Error('connection ended early')),
        })
        next()
      })
    }
    if (mode !== 'ping-pong') {
      t1 = performance.now()
      conn.shutdown('write')
    }
    const cpu = cpuSince(cpu0)
    await conn.close()
    return { type: 'ran', seconds: (t1 - t0) / 1000, cpu, heap: heapNow() - heap0 }
  }
}

function nodeClient(mode: Mode, sender: Sender, port: number): Run {
  const block = Buffer.alloc(WRITE_BYTES, 0x5a)
  const message = Buffer.alloc(MESSAGE_BYTES, 0x6d)
  return (amount) =>
    new Promise<PeerMessage>((resolve, reject) => {
      const heap0 = heapNow()
      const cpu0 = process.cpuUsage()
      let t0 = 0
      let t1 = 0
      let cpu: Cpu | null = null
      const socket = net.connect({ host: HOST, port })
      socket.on('error', reject)
      socket.on('close', () => (cpu ? resolve({ type: 'ran', seconds: (t1 - t0) / 1000, cpu, heap: heapNow() - heap0 }) : reject(new Error('connection closed early'))))
      const finish = (): void => {
        t1 = performance.now()
        cpu = cpuSince(cpu0)
      }
      socket.on('connect', () => {
        if (mode !== 'stream') socket.setNoDelay(true)
        t0 = performance.now()
        if (mode === 'ping-pong') {
          let sent = 1
          let received = 0
          socket.on('data', (chunk: Buffer) => {
            received += chunk.length
            if (received < sent * MESSAGE_BYTES) return
            if (sent < amount) {
              sent++
              socket.write(message)
            } else {
              finish()
              socket.end()
            }
          })
          socket.write(message)
          return
        }
        // Stream: write until the socket says wait; pipelined: WINDOW
        // messages per turn at most (corked into one writev for `cork`).
        const data = mode === 'stream' ? block : message
        const perTurn = mode === 'stream' ? Infinity : WINDOW
        let left = mode === 'stream' ? amount / WRITE_BYTES : amount
        socket.resume() // the server sends nothing; end of stream is 'close'
        const pump = (): void => {
          if (sender === 'cork') socket.cork()
          let ok = true
          for (let k = 0; ok && k < perTurn && left > 0; k++, left--) ok = socket.write(data)
          if (sender === 'cork') socket.uncork()
          if (left === 0) socket.end(finish)
          else if (!ok) socket.once('drain', pump)
          else setImmediate(pump)
        }
        pump()
      })
    })
}

// ---------------------------------------------------------------------------

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '{}') as PeerSpec
  let z: Zcio | null = null
  if (spec.impl === 'zcio') {
    const loaded = await loadZcio()
    if (!loaded.lib) throw new Error(loaded.reason ?? 'zcio unavailable')
    z = loaded.lib
  }
  let run: Run | null = null
  process.on('message', (m: ParentMessage) => {
    if (m.type === 'exit') process.exit(0)
    else if (m.type === 'run' && run) run(m.amount).then(post, fail)
  })
  process.on('disconnect', () => process.exit(0))
  if (spec.role === 'server') void (z ? zcioServer(z, spec.mode, spec.busyPoll) : nodeServer(spec.mode)).catch(fail)
  else {
    run = z ? zcioClient(z, spec.mode, spec.sender, spec.port, spec.busyPoll) : nodeClient(spec.mode, spec.sender, spec.port)
    post({ type: 'ready' })
  }
}

main().catch(fail)
