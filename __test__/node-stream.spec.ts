// toNodeStream(): the Duplex behaves as a net.Socket where Node's modules
// look (node:net is the oracle): it closes once the peer ended and its own
// side is done, it is half-open only when asked, end() after the peer is
// gone is no error, it has the socket options, addresses and the idle
// timeout, and Node's http server runs over it with keep-alive.

import * as http from 'node:http'
import * as net from 'node:net'
import { pipeline } from 'node:stream/promises'
import { Writable } from 'node:stream'
import { codeOf, needs, root, slow, zcio } from './support.js'
import * as path from 'node:path'
import { createRequire } from 'node:module'

const { Ring, BufferGroup, TcpStream, TcpListener } = zcio
type Ring = InstanceType<typeof Ring>
type Stream = InstanceType<typeof TcpStream>
type Group = InstanceType<typeof BufferGroup>
type Duplex = ReturnType<Stream['toNodeStream']>
/** The Duplex's net.Socket parts. */
type SocketLike = Duplex & {
  setNoDelay(on?: boolean): SocketLike
  setKeepAlive(on?: boolean, delay?: number): SocketLike
  setTimeout(ms: number, cb?: () => void): SocketLike
  remoteAddress?: string
  remotePort?: number
  remoteFamily?: string
  localAddress?: string
  localPort?: number
}
/** The module function, for the options `TcpStream.toNodeStream` does not take. */
const { toNodeStream } = createRequire(import.meta.url)(path.join(root, 'lib', 'node-stream.js')) as {
  toNodeStream(s: Stream, g: Group, o?: { allowHalfOpen?: boolean }): SocketLike
}

const netTest = needs('bufRing')
const turn = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** A zcio listener whose accepted streams become Duplexes. */
function zcioServer(ring: Ring, group: Group, onSocket: (d: SocketLike) => void): { port: number; close(): void } {
  const l = TcpListener.bind(ring, { port: 0 })
  void (async () => {
    for await (const s of l) onSocket(s.toNodeStream(group) as SocketLike)
  })()
  return { port: l.address.port!, close: () => l.close() }
}

/** A node:net server, the oracle. */
async function netServer(onSocket: (s: net.Socket) => void): Promise<{ port: number; close(): void }> {
  const server = net.createServer(onSocket)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() }
}

function sink(): Writable {
  return new Writable({ write: (_c, _e, cb) => setImmediate(cb) })
}

/**
 * 50 clients send and end; each server socket is piped into a sink.
 * Returns how many server sockets closed and how many clients saw the end.
 */
async function pipelineRun(listen: (onSocket: (s: net.Socket | SocketLike) => void) => Promise<{ port: number; close(): void }>): Promise<{ closed: number; clientsEnded: number; piped: number }> {
  const n = 50
  let closed = 0
  let piped = 0
  const server = await listen((s) => {
    s.on('close', () => closed++)
    pipeline(s, sink()).then(() => piped++, (e) => console.log('pipeline', e.code))
  })
  let clientsEnded = 0
  await Promise.all(
    Array.from({ length: n }, () =>
      new Promise<void>((resolve) => {
        const c = net.connect(server.port, '127.0.0.1', () => c.end(Buffer.alloc(10000, 1)))
        c.on('end', () => clientsEnded++)
        c.on('close', () => resolve())
        c.on('error', () => {})
        c.resume()
        setTimeout(() => {
          c.destroy()
          resolve()
        }, 3000).unref()
      }),
    ),
  )
  for (let i = 0; i < 100 && (closed < n || piped < n); i++) await turn(10)
  server.close()
  return { closed, clientsEnded, piped }
}

netTest('pipeline(duplex, sink) over 50 connections ends and closes every one, as with node:net', async (t) => {
  const oracle = await pipelineRun((f) => netServer(f))
  const ring = new Ring()
  const group = new BufferGroup(ring, { groupId: 1, bufferSize: 4096, bufferCount: 64 })
  const mine = await pipelineRun(async (f) => zcioServer(ring, group, f))
  t.deepEqual(oracle, { closed: 50, clientsEnded: 50, piped: 50 })
  t.deepEqual(mine, oracle)
  ring.close()
})

netTest('allowHalfOpen: true keeps the writable side open after the peer ended, as with node:net', async (t) => {
  const ring = new Ring()
  const group = new BufferGroup(ring, { groupId: 2, bufferSize: 4096, bufferCount: 8 })
  const l = TcpListener.bind(ring, { port: 0 })
  const accepted = l.accept()
  const client = net.connect(l.address.port!, '127.0.0.1')
  const d = toNodeStream((await accepted)!, group, { allowHalfOpen: true })
  const closed = new Promise((r) => d.on('close', r))
  let got = ''
  client.setEncoding('utf8').on('data', (s: string) => (got += s))
  const clientEnded = new Promise<void>((r) => client.on('end', r))
  client.end('bye')
  await new Promise<void>((r) => d.on('end', r).resume())
  await turn(20)
  t.true(d.writable, 'the writable side stays open')
  d.end('still here')
  await clientEnded
  t.is(got, 'still here')
  await closed
  client.destroy()
  l.close()
  ring.close()
  t.throws(() => toNodeStream({} as Stream, group), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => toNodeStream(client as unknown as Stream, group, { allowHalfOpen: 1 as unknown as boolean }), { code: 'ERR_INVALID_ARG_TYPE' })
})

netTest('toNodeStream refuses what is not a BufferGroup with ERR_INVALID_ARG_TYPE', async (t) => {
  const ring = new Ring()
  const l = TcpListener.bind(ring, { port: 0 })
  const accepted = l.accept()
  const s = await TcpStream.connect(ring, { port: l.address.port! })
  for (const bad of [undefined, null, {}, 'group', ring]) {
    t.is(codeOf(() => s.toNodeStream(bad as unknown as Group)), 'ERR_INVALID_ARG_TYPE', String(bad))
  }
  await s.close()
  await (await accepted)!.close()
  l.close()
  ring.close()
})

// node:net treats ENOTCONN from shutdown(2) as success; a net.Socket reads
// eagerly and so meets the reset first, while the Duplex receives only when
// read: its end() is what meets the closed connection.
netTest('end() after the peer reset the connection finishes without error', async (t) => {
  const ring = new Ring()
  const group = new BufferGroup(ring, { groupId: 3, bufferSize: 4096, bufferCount: 8 })
  const peers: net.Socket[] = []
  const server = await netServer((s) => peers.push(s))
  const d = (await TcpStream.connect(ring, { port: server.port })).toNodeStream(group)
  const closed = new Promise((r) => d.on('close', r))
  await new Promise<void>((r) => d.write(Buffer.alloc(1000), () => r()))
  for (let i = 0; i < 100 && peers.length === 0; i++) await turn(5)
  await turn(20)
  peers[0].resetAndDestroy() // unread data: the peer sends a reset
  await turn(50)
  const outcome = await new Promise<string>((resolve) => {
    d.once('finish', () => resolve('finish'))
    d.once('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code}`))
    setTimeout(() => resolve('neither finish nor error'), 2000).unref()
    d.end()
  })
  t.is(outcome, 'finish')
  d.destroy()
  await closed
  server.close()
  ring.close()
})

netTest('setTimeout emits timeout after idleness and not while data flows; addresses and options, as net.Socket', async (t) => {
  const ring = new Ring()
  const group = new BufferGroup(ring, { groupId: 4, bufferSize: 4096, bufferCount: 8 })
  const l = TcpListener.bind(ring, { port: 0 })
  const accepted = l.accept()
  const client = net.connect(l.address.port!, '127.0.0.1')
  await new Promise((r) => client.on('connect', r))
  const d = (await accepted)!.toNodeStream(group) as SocketLike
  // Closed even when an assertion fails, so the worker can exit.
  t.teardown(() => {
    d.destroy()
    client.destroy()
    l.close()
    ring.close()
  })
  t.is(d.remoteAddress, client.localAddress)
  t.is(d.remotePort, client.localPort)
  t.is(d.remoteFamily, client.localFamily)
  t.is(d.localAddress, client.remoteAddress)
  t.is(d.localPort, client.remotePort)
  t.is(d.setNoDelay(true), d)
  t.is(d.setKeepAlive(true, 1000), d)
  t.is(d.setKeepAlive(false), d)
  t.is(codeOf(() => d.setTimeout('1' as unknown as number)), 'ERR_INVALID_ARG_TYPE')
  t.is(codeOf(() => d.setTimeout(-1)), 'ERR_OUT_OF_RANGE')
  let timeouts = 0
  d.resume()
  d.setTimeout(150 * slow, () => timeouts++)
  // Data every 50 ms: no timeout.
  for (let i = 0; i < 8; i++) {
    client.write('x')
    await turn(50 * slow)
  }
  t.is(timeouts, 0)
  await turn(300 * slow)
  t.is(timeouts, 1)
  t.false(d.destroyed, "a timeout does not close the stream (net.Socket's does not either)")
  d.setTimeout(0)
  client.write('y')
  await turn(300 * slow)
  t.is(timeouts, 1)
})

netTest("Node's http server runs over the Duplex: keep-alive requests, its timeouts, the keep-alive timeout", async (t) => {
  const ring = new Ring()
  const group = new BufferGroup(ring, { groupId: 5, bufferSize: 4096, bufferCount: 16 })
  const remote: (string | undefined)[] = []
  const server = http.createServer((req, res) => {
    remote.push(req.socket.remoteAddress)
    let body = ''
    req.setEncoding('utf8').on('data', (s: string) => (body += s))
    req.on('end', () => res.end(`${req.method} ${req.url} ${body}`))
  })
  const calls: string[] = []
  const closed: Promise<void>[] = []
  const z = zcioServer(ring, group, (d) => {
    for (const m of ['setNoDelay', 'setKeepAlive', 'setTimeout'] as const) {
      const f = d[m].bind(d) as (...a: unknown[]) => SocketLike
      ;(d as unknown as Record<string, unknown>)[m] = (...a: unknown[]) => {
        calls.push(`${m}(${a.filter((x) => typeof x !== 'function').join(', ')})`)
        return f(...a)
      }
    }
    closed.push(new Promise((r) => d.on('close', r)))
    server.emit('connection', d)
  })
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const request = (i: number): Promise<string> =>
    new Promise((resolve, reject) => {
      const req = http.request({ port: z.port, host: '127.0.0.1', method: 'POST', path: `/r${i}`, agent }, (res) => {
        let s = ''
        res.setEncoding('utf8').on('data', (x: string) => (s += x))
        res.on('end', () => resolve(`${res.statusCode} ${s}`))
      })
      req.on('error', reject)
      req.end(`body${i}`)
    })
  const answers: string[] = []
  for (let i = 0; i < 20; i++) answers.push(await request(i))
  t.deepEqual(answers, Array.from({ length: 20 }, (_, i) => `200 POST /r${i} body${i}`))
  t.is(closed.length, 1, 'one connection for all requests (keep-alive)')
  // (Node's net.Server applies noDelay and keepAlive to the handle of a
  // connection it accepts itself, not to one emitted: setNoDelay and
  // setKeepAlive are checked on their own above.)
  t.true(calls.some((c) => c.startsWith('setTimeout(')), calls.join(' '))
  t.is(remote[0], '127.0.0.1')
  agent.destroy()
  await closed[0]
  // Idle past keepAliveTimeout (through setTimeout and 'timeout'): the
  // server closes the connection. A raw client, which never closes by itself.
  server.keepAliveTimeout = 300
  const raw = net.connect(z.port, '127.0.0.1')
  let response = ''
  raw.setEncoding('utf8').on('data', (s: string) => (response += s))
  const rawClosed = new Promise<string>((r) => raw.on('close', () => r('closed')))
  raw.write('GET /idle HTTP/1.1\r\nHost: x\r\n\r\n')
  const ended = await Promise.race([rawClosed, turn(3000).then(() => 'still open')])
  t.is(ended, 'closed')
  t.true(response.startsWith('HTTP/1.1 200'), response)
  t.true(response.includes('GET /idle'), response)
  raw.destroy()
  z.close()
  server.close()
  ring.close()
})
