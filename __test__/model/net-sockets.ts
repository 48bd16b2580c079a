// Commands: zcio.net conversations, each a scenario of its own between a
// zcio.net server and zcio.net clients, on the default ring or on a ring
// and group the command makes, closed (or not) halfway. Each client writes
// chunks of a pattern, then ends, destroys or resets; the server may start
// paused. What must hold whatever happens: every socket of both sides
// emits 'close' exactly once and in bounded time, never 'data' after
// 'end'; a server gets a prefix of its client's bytes (all of them when
// the client ended and nothing was closed under it); the default ring is
// let go once everything closed. Byte i of client j is (i * 13 + j) & 255.
// With `echo`, the server writes back what it gets and the clients read
// through `onread` (a buffer of the command's size; the callback stops
// reading every so often and resumes a moment later): each gets a prefix
// of its own bytes back (all of them when it ended cleanly), never a
// 'data' event.

import fc from 'fast-check'
import type * as nodeNet from 'node:net'
import * as path from 'node:path'
import { createRequire } from 'node:module'
import { Cmd } from './cmd.js'
import { cover, fail, root, sleep, waitUntil, zcio } from './model.js'
import type { World } from './world.js'

type Net = typeof nodeNet
const net = zcio.net as unknown as Net
const context = createRequire(import.meta.url)(path.join(root, 'lib', 'net-context.js')) as { defaultUsers(): number }

type Ending = 'end' | 'destroy' | 'reset' | 'leave'
type RingUse = 'default' | 'given' | 'given, closed halfway'
/** The server echoes; clients read with `onread` into `buffer` bytes, stopping at every `stopEvery`th read (0: never). */
type Echo = { buffer: number; stopEvery: number } | undefined

/** What one socket did. */
interface Seen {
  name: string
  /** The client's local port: a server socket's remote port. */
  port: number | undefined
  bytes: number[]
  ended: boolean
  closes: number
  errors: string[]
  bad: string[]
}

function watch(s: nodeNet.Socket, name: string): Seen {
  const seen: Seen = { name, port: undefined, bytes: [], ended: false, closes: 0, errors: [], bad: [] }
  s.on('data', (b: Buffer) => {
    if (seen.ended) seen.bad.push(`${name}: 'data' after 'end'`)
    for (const x of b) seen.bytes.push(x)
  })
  s.on('end', () => {
    if (seen.ended) seen.bad.push(`${name}: 'end' twice`)
    seen.ended = true
  })
  s.on('error', (e: NodeJS.ErrnoException) => seen.errors.push(e.code ?? e.message))
  s.on('close', () => {
    seen.closes++
    if (seen.closes > 1) seen.bad.push(`${name}: 'close' ${seen.closes} times`)
  })
  return seen
}

const byte = (i: number, j: number): number => (i * 13 + j) & 255

function pattern(j: number, from: number, n: number): Buffer {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i++) b[i] = byte(from + i, j)
  return b
}

let nextGroupId = 20000

class NetConversation extends Cmd {
  constructor(
    readonly chunks: number[][],
    readonly endings: Ending[],
    readonly ring: RingUse,
    readonly paused: boolean,
    readonly halfOpen: boolean,
    readonly unref: boolean,
    readonly echo: Echo = undefined,
  ) {
    super()
  }

  async act(w: World) {
    const own = this.ring === 'default' ? undefined : new zcio.Ring()
    const group = own && new zcio.BufferGroup(own, { groupId: nextGroupId++ % 65536, bufferSize: 4096, bufferCount: 16 })
    const given = own ? { ring: own, group } : {}
    const seen: Seen[] = []
    const sockets: nodeNet.Socket[] = []
    const server = net.createServer({ ...given, allowHalfOpen: this.halfOpen, pauseOnConnect: this.paused } as nodeNet.ServerOpts, (s) => {
      const k = seen.filter((x) => x.name.startsWith('server')).length
      const x = watch(s, `server ${k}`)
      x.port = s.remotePort
      seen.push(x)
      sockets.push(s)
      // With allowHalfOpen the server answers the client's end, then ends too.
      if (this.echo) s.on('data', (d: Buffer) => s.write(d))
      if (this.halfOpen) s.on('end', () => s.end('bye'))
      if (this.paused) setTimeout(() => s.resume(), 10)
    })
    const serverErrors: string[] = []
    server.on('error', (e) => serverErrors.push(String(e)))
    try {
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
      const port = (server.address() as nodeNet.AddressInfo).port
      const clients = this.chunks.map((sizes, j) => {
        const echo = this.echo
        let reads = 0
        const onread = echo && {
          buffer: Buffer.alloc(echo.buffer),
          callback: (n: number, buf: Buffer): boolean => {
            if (s.ended) s.bad.push(`client ${j}: onread after 'end'`)
            for (let i = 0; i < n; i++) s.bytes.push(buf[i])
            if (echo.stopEvery === 0 || ++reads % echo.stopEvery !== 0) return true
            setTimeout(() => c.resume(), 1)
            cover('zcio.net: onread stopped and resumed')
            return false
          },
        }
        const c = net.connect({ port, host: '127.0.0.1', ...given, ...(onread ? { onread } : {}) } as nodeNet.NetConnectOpts)
        const s = watch(c, `client ${j}`)
        if (onread) c.on('data', () => s.bad.push(`client ${j}: 'data' with onread`))
        c.on('connect', () => (s.port = c.localPort))
        seen.push(s)
        sockets.push(c)
        if (this.unref) c.unref()
        let at = 0
        for (const n of sizes) {
          c.write(pattern(j, at, n))
          at += n
        }
        return { c, sent: at }
      })
      if (this.ring === 'given, closed halfway') {
        await sleep(3)
        own!.close()
        cover('zcio.net: given ring closed under live sockets')
      }
      clients.forEach(({ c }, j) => {
        const ending = this.endings[j % this.endings.length]
        if (ending === 'end') c.end()
        else if (ending === 'destroy') setImmediate(() => c.destroy())
        else if (ending === 'reset') setImmediate(() => c.resetAndDestroy())
      })
      // 'leave': the client stays open until the server closes it below.
      const clientsDone = (): boolean => seen.filter((s) => s.name.startsWith('client') && this.endings[Number(s.name.slice(7)) % this.endings.length] !== 'leave').every((s) => s.closes > 0)
      if (!(await waitUntil(clientsDone, 10_000))) fail(`hang: clients never closed: ${this.describe(seen)}`)
      // The server's sockets of clients that were left open are closed by the server.
      await sleep(20)
      for (const s of sockets) s.destroy()
      if (!(await waitUntil(() => seen.every((s) => s.closes > 0), 10_000))) fail(`hang: sockets never closed: ${this.describe(seen)}`)
      for (const s of seen) if (s.bad.length > 0) fail(s.bad.join('; '))
      if (serverErrors.length > 0 && !this.ring.includes('closed')) fail(`server errors: ${serverErrors.join('; ')}`)
      this.checkBytes(seen, clients.map((c) => c.sent))
      w.log(`  ${this.describe(seen)}`)
    } finally {
      for (const s of sockets) s.destroy()
      await new Promise<void>((r) => server.close(() => r()))
      group?.close()
      own?.close()
    }
    if (this.ring === 'default') {
      if (!(await waitUntil(() => context.defaultUsers() === 0, 3000))) fail(`the default ring still has ${context.defaultUsers()} users after every socket and the server closed`)
      cover('zcio.net: default ring let go after a conversation')
    }
  }

  /**
   * The server socket of each client (the one whose remote port is the
   * client's local port) got a prefix of the client's bytes: all of them
   * when the client ended and nothing was closed under it; then the client
   * got the server's answer ('bye' with allowHalfOpen, nothing without).
   */
  checkBytes(seen: Seen[], sent: number[]): void {
    const closed = this.ring === 'given, closed halfway'
    sent.forEach((n, j) => {
      const client = seen.find((s) => s.name === `client ${j}`)!
      const server = client.port === undefined ? undefined : seen.find((s) => s.name.startsWith('server') && s.port === client.port)
      const ending = this.endings[j % this.endings.length]
      const got = server?.bytes ?? []
      if (got.length > n) fail(`server of client ${j} got ${got.length} bytes of ${n} sent`)
      for (let i = 0; i < got.length; i++) {
        if (got[i] !== byte(i, j)) fail(`server of client ${j}: byte ${i} is ${got[i]}, expected ${byte(i, j)}`)
      }
      if (ending !== 'end' || closed) return
      if (server === undefined) fail(`client ${j} ended cleanly, but no server socket had its port (${client.port}): ${this.describe(seen)}`)
      if (got.length !== n) fail(`client ${j} sent ${n} bytes and ended; its server socket got ${got.length}`)
      let back = client.bytes
      if (this.echo) {
        for (let i = 0; i < Math.min(n, back.length); i++) {
          if (back[i] !== byte(i, j)) fail(`client ${j}: echoed byte ${i} is ${back[i]}, expected ${byte(i, j)}`)
        }
        if (back.length < n) fail(`client ${j} ended cleanly and got ${back.length} of its ${n} bytes back`)
        back = back.slice(n)
        cover('zcio.net: every echoed byte came back through onread')
      }
      const answer = Buffer.from(back).toString()
      if (answer !== (this.halfOpen ? 'bye' : '')) fail(`client ${j} got ${JSON.stringify(answer)} back`)
      cover('zcio.net: every byte of an ended client arrived')
    })
  }

  describe(seen: Seen[]): string {
    return seen.map((s) => `${s.name} ${s.bytes.length} B${s.ended ? ' end' : ''}${s.errors.length ? ` ${s.errors.join('/')}` : ''} close×${s.closes}`).join(', ')
  }

  toString() {
    const sizes = this.chunks.map((c) => `[${c.join(',')}]`).join(' ')
    return `zcio.net conversation on the ${this.ring} ring: clients write ${sizes} then ${this.endings.join('/')}${this.paused ? ', server paused at first' : ''}${this.halfOpen ? ', allowHalfOpen' : ''}${this.unref ? ', clients unref()ed' : ''}${this.echo ? `, echoed into onread buffers of ${this.echo.buffer} B stopping every ${this.echo.stopEvery}` : ''}`
  }
}

export const netSocketsCmd = fc
  .record({
    chunks: fc.array(fc.array(fc.integer({ min: 1, max: 70_000 }), { minLength: 0, maxLength: 4 }), { minLength: 1, maxLength: 3 }),
    endings: fc.array(fc.constantFrom<Ending>('end', 'end', 'destroy', 'reset', 'leave'), { minLength: 1, maxLength: 3 }),
    ring: fc.constantFrom<RingUse>('default', 'default', 'given', 'given, closed halfway'),
    paused: fc.boolean(),
    halfOpen: fc.boolean(),
    unref: fc.boolean(),
    echo: fc.option(fc.record({ buffer: fc.integer({ min: 1, max: 20_000 }), stopEvery: fc.nat({ max: 4 }) }), { nil: undefined }),
  })
  .map((r) => new NetConversation(r.chunks, r.endings, r.ring, r.paused, r.halfOpen, r.unref, r.echo))
