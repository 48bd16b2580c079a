import test from 'ava'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { type ChildProcess, spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { needs, needsSerial, root, zcio } from './support.js'

const { Ring, TcpListener, TcpStream } = zcio
type Ring = InstanceType<typeof Ring>
type Stream = InstanceType<typeof TcpStream>
const { streamNative } = createRequire(import.meta.url)(`${root}/lib/stream.js`) as typeof import('../lib/stream.js')

const netTest = needs()
// For tests that count this process's descriptors: serial tests run before
// the concurrent ones of the file, so no other test's sockets are counted.
const netSerial = needsSerial()

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(5)
  }
}

function openFds(): number {
  return fs.readdirSync('/proc/self/fd').length
}

/** A child process whose stdout lines arrive as JSON messages. */
function child(cmd: string, args: string[]): { proc: ChildProcess; next(): Promise<Record<string, unknown>>; exit: Promise<number | null>; stderr(): string } {
  const proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] })
  const lines: string[] = []
  const waiting: ((l: string) => void)[] = []
  let buf = ''
  let err = ''
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d
    for (let i; (i = buf.indexOf('\n')) >= 0; ) {
      const line = buf.slice(0, i)
      buf = buf.slice(i + 1)
      const w = waiting.shift()
      if (w) w(line)
      else lines.push(line)
    }
  })
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d))
  const exit = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)))
  return {
    proc,
    exit,
    stderr: () => err,
    next: () => {
      const l = lines.shift()
      if (l !== undefined) return Promise.resolve(JSON.parse(l))
      return Promise.race([
        new Promise<Record<string, unknown>>((r) => waiting.push((line) => r(JSON.parse(line)))),
        exit.then((code) => Promise.reject(new Error(`child exited (${code}): ${err}`))),
      ])
    },
  }
}

/** A TCP client of `port` (Node's own), resolved once connected. */
function nodeClient(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(s))
    s.on('error', reject)
  })
}

// ---------------------------------------------------------------------------
// Failed accepts

// The child runs out of descriptors with an accept() waiting; the peer
// connects; the accept fails with EMFILE. The descriptors are freed in the
// error callback, and nothing but the listener's retry keeps the process
// alive: the waiting accept() must still get the connection, and the
// listener must go on accepting.
const EMFILE_CHILD = `
const fs = require('fs')
const z = require(${JSON.stringify(root)})
const ring = new z.Ring()
const dummies = []
const codes = []
const l = z.TcpListener.bind(ring, { port: 0, backlog: 16, onError: (e) => {
  codes.push(e.code)
  for (const fd of dummies.splice(0)) fs.closeSync(fd)
} })
const say = (m) => process.stdout.write(JSON.stringify(m) + '\\n')
const first = l.accept()
try { for (;;) dummies.push(fs.openSync('/dev/null', 'r')) } catch (e) { if (e.code !== 'EMFILE') throw e }
say({ port: l.address.port, dummies: dummies.length })
first.then(async (s) => {
  say({ first: s === null ? 'null' : 'stream', errorCount: l.errorCount, lastError: l.lastError && l.lastError.code, codes, remote: s && s.remoteAddress.port })
  const second = await l.accept()
  say({ second: second === null ? 'null' : 'stream' })
  l.close()
  ring.close()
}, (e) => { say({ first: 'rejected ' + e.code }); process.exit(1) })
`

netTest('an accept that fails with EMFILE is retried: the listener accepts once descriptors are free', async (t) => {
  const c = child('sh', ['-c', 'ulimit -n 64 && exec "$0" -e "$1"', process.execPath, EMFILE_CHILD])
  const hello = await c.next()
  t.true((hello.dummies as number) > 0, 'the child opened no dummy descriptor')
  const a = await nodeClient(hello.port as number)
  const first = await c.next()
  t.is(first.first, 'stream', c.stderr())
  t.is(first.remote, a.localPort)
  t.true((first.errorCount as number) >= 1)
  t.is(first.lastError, 'EMFILE')
  t.true((first.codes as string[]).every((x) => x === 'EMFILE'))
  const b = await nodeClient(hello.port as number)
  t.deepEqual(await c.next(), { second: 'stream' })
  t.is(await c.exit, 0, c.stderr())
  a.destroy()
  b.destroy()
})

// With no accept() waiting, the retry does not keep the process alive.
netTest('the retry after a failed accept keeps the process alive only while an accept() waits', async (t) => {
  const code = `
const fs = require('fs')
const z = require(${JSON.stringify(root)})
const ring = new z.Ring()
const l = z.TcpListener.bind(ring, { port: 0, readyLimit: 1, onError: (e) => say({ error: e.code }) })
const say = (m) => process.stdout.write(JSON.stringify(m) + '\\n')
l.accept().then(() => {
  const dummies = []
  try { for (;;) dummies.push(fs.openSync('/dev/null', 'r')) } catch {}
  say({ taken: 1 })
})
say({ port: l.address.port })
`
  const c = child('sh', ['-c', 'ulimit -n 64 && exec "$0" -e "$1"', process.execPath, code])
  const { port } = await c.next()
  const a = await nodeClient(port as number)
  t.deepEqual(await c.next(), { taken: 1 })
  // This connection only makes the child's accept fail: the child exits
  // right after, and its listening socket's close may reset the connection
  // before this side has seen it established (ECONNRESET), on a busy machine.
  const b = net.connect({ port: port as number, host: '127.0.0.1' })
  b.on('error', () => {})
  t.deepEqual(await c.next(), { error: 'EMFILE' })
  // Nothing waits for a connection and nothing else is pending: the child exits by itself.
  t.is(await Promise.race([c.exit, sleep(10_000).then(() => 'still running')]), 0, c.stderr())
  a.destroy()
  b.destroy()
})

// ---------------------------------------------------------------------------
// Backpressure

netSerial('a slow application: the ready queue and the descriptors stay bounded, every connection is accepted once taken', async (t) => {
  const N = 1500
  const ring = new Ring()
  const l = TcpListener.bind(ring, { port: 0, backlog: 16 })
  const port = l.address.port!
  const base = openFds()
  const first = l.accept()
  // Each client sends a byte some time after connecting: a connection the
  // kernel answered with a SYN cookie while its queue was full becomes
  // acceptable only when the client's next segment arrives, and spreading
  // them keeps the test from waiting on TCP's retransmission backoff.
  const code = `
const net = require('net')
for (let i = 0; i < ${N}; i++) {
  const s = net.connect({ port: ${port}, host: '127.0.0.1' }, () => setTimeout(() => s.write('x'), Math.random() * 2000))
  s.on('error', () => {})
}
process.stdin.on('data', () => process.exit(0))
`
  const c = child('sh', ['-c', 'ulimit -n 4096 && exec "$0" -e "$1"', process.execPath, code])
  // A failed assertion ends the test: its 1500 clients must not outlive it,
  // nor its ring, which would keep the worker (and so the run) alive.
  t.teardown(() => {
    c.proc.kill('SIGKILL')
    l.close()
    ring.close()
  })
  const s1 = (await first)!
  t.truthy(s1)
  // The application takes nothing more for a while.
  let maxFds = 0
  let maxReady = 0
  for (let i = 0; i < 100; i++) {
    await sleep(10)
    maxFds = Math.max(maxFds, openFds() - base)
    maxReady = Math.max(maxReady, l.readyCount)
  }
  t.true(maxReady <= 16, `ready queue grew to ${maxReady}`)
  t.is(l.readyCount, 16, 'the ready queue was not filled up to its limit')
  // 16 ready, the one taken, and slack for the runtime's own descriptors.
  t.true(maxFds <= 16 + 1 + 8, `${maxFds} descriptors more than before`)
  // Now the application takes every connection (and closes it).
  let taken = 1
  await s1.close()
  while (taken < N) {
    const s = (await l.accept())!
    maxReady = Math.max(maxReady, l.readyCount)
    taken++
    await s.close()
  }
  t.true(maxReady <= 16, `ready queue grew to ${maxReady}`)
  t.is(l.connectionCount, 0)
  c.proc.stdin!.write('x')
  await c.exit
  l.close()
  ring.close()
})

netTest('readyLimit bounds the ready queue whatever the backlog; 0 accepts only on demand', async (t) => {
  const ring = new Ring()
  for (const readyLimit of [0, 3]) {
    const l = TcpListener.bind(ring, { port: 0, backlog: 1024, readyLimit })
    const port = l.address.port!
    const clients: Stream[] = []
    const first = l.accept()
    for (let i = 0; i < 40; i++) clients.push(await TcpStream.connect(ring, { port }))
    const got: Stream[] = [(await first)!]
    await sleep(50)
    t.is(l.readyCount, readyLimit)
    t.is(l.connectionCount, 1 + readyLimit)
    while (got.length < 40) {
      got.push((await l.accept())!)
      t.true(l.readyCount <= readyLimit)
    }
    t.is(l.connectionCount, 40)
    for (const s of [...got, ...clients]) await s.close()
    t.is(l.connectionCount, 0)
    l.close()
  }
  ring.close()
})

netTest('maxConnections: connections beyond it are closed at once and counted; room again after closes', async (t) => {
  const ring = new Ring()
  const l = TcpListener.bind(ring, { port: 0, maxConnections: 2 })
  const port = l.address.port!
  t.is(l.maxConnections, 2)
  const p1 = l.accept()
  const c1 = await nodeClient(port)
  const s1 = (await p1)!
  const c2 = await nodeClient(port)
  const s2 = (await l.accept())!
  t.is(l.connectionCount, 2)
  const ended = (s: net.Socket) => new Promise<void>((r) => (s.readableEnded || s.destroyed ? r() : s.on('close', () => r())))
  const c3 = await nodeClient(port)
  const c4 = await nodeClient(port)
  c3.resume()
  c4.resume()
  await until('two dropped connections', () => l.droppedCount === 2)
  await Promise.all([ended(c3), ended(c4)])
  t.is(l.connectionCount, 2)
  t.is(l.readyCount, 0)
  await s1.close()
  t.is(l.connectionCount, 1)
  const c5 = await nodeClient(port)
  const s5 = (await l.accept())!
  t.is(s5.remoteAddress.port, c5.localPort!)
  t.is(l.connectionCount, 2)
  // Raised at run time: the next one is kept.
  l.maxConnections = 3
  const c6 = await nodeClient(port)
  const s6 = (await l.accept())!
  t.is(s6.remoteAddress.port, c6.localPort!)
  t.is(l.droppedCount, 2)
  for (const s of [s2, s5, s6]) await s.close()
  t.is(l.connectionCount, 0)
  for (const c of [c1, c2, c3, c4, c5, c6]) c.destroy()
  l.close()
  ring.close()
})

netTest('connections collected without close() leave the count', async (t) => {
  if (!globalThis.gc) return t.fail('needs --expose-gc')
  const ring = new Ring()
  const l = TcpListener.bind(ring, { port: 0 })
  const port = l.address.port!
  const c = await nodeClient(port)
  await (async () => {
    const s = await l.accept()
    t.truthy(s)
  })()
  t.is(l.connectionCount, 1)
  await until('the stream to be collected', () => {
    globalThis.gc!()
    return l.connectionCount === 0
  })
  c.destroy()
  l.close()
  ring.close()
})

netTest('close() and a closed ring: waiting accepts get null, ready connections are closed', async (t) => {
  const ring = new Ring()
  const l = TcpListener.bind(ring, { port: 0 })
  const port = l.address.port!
  const first = l.accept()
  const c1 = await TcpStream.connect(ring, { port })
  const c2 = await TcpStream.connect(ring, { port })
  t.truthy(await first)
  await until('a ready connection', () => l.readyCount === 1)
  const waiting = [l.accept(), l.accept()]
  t.truthy(await waiting[0])
  const l2 = TcpListener.bind(ring, { port: 0 })
  const w2 = l2.accept()
  l.close()
  t.true(l.closed)
  t.is(await waiting[1], null)
  t.is(await l.accept(), null)
  ring.close()
  t.is(await w2, null)
  t.is(await l2.accept(), null)
  t.true(l2.closed)
  void c1.close()
  void c2.close()
})

// ---------------------------------------------------------------------------
// TCP_NODELAY

netTest('TCP_NODELAY is on for accepted and connected streams; setNoDelay(false) turns it off; a no-op on Unix sockets', async (t) => {
  const ring = new Ring()
  const l = TcpListener.bind(ring, { port: 0 })
  const accepted = l.accept()
  const client = await TcpStream.connect(ring, { port: l.address.port! })
  const server = (await accepted)!
  for (const s of [client, server]) {
    t.true(streamNative(s).noDelay)
    s.setNoDelay(false)
    t.false(streamNative(s).noDelay)
    s.setNoDelay(true)
    t.true(streamNative(s).noDelay)
  }
  const six = TcpListener.bind(ring, { host: '::1', port: 0 })
  const acc6 = six.accept()
  const c6 = await TcpStream.connect(ring, { host: '::1', port: six.address.port! }).catch(() => null)
  if (c6) {
    t.true(streamNative(c6).noDelay)
    t.true(streamNative((await acc6)!).noDelay)
  }
  const sock = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'zcio-')), 's')
  const u = TcpListener.bind(ring, { path: sock })
  const accU = u.accept()
  const cu = await TcpStream.connect(ring, { path: sock })
  const su = (await accU)!
  for (const s of [cu, su]) {
    t.false(streamNative(s).noDelay)
    t.is(s.setNoDelay(true), s)
    t.is(s.setNoDelay(false), s)
  }
  for (const x of [l, six, u]) x.close()
  ring.close()
  fs.rmSync(path.dirname(sock), { recursive: true, force: true })
})

// ---------------------------------------------------------------------------
// Argument errors

function errorOf(fn: () => unknown): Error & { code?: string } {
  try {
    fn()
  } catch (e) {
    return e as Error & { code?: string }
  }
  throw new Error('did not throw')
}

async function rejectionOf(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p
  } catch (e) {
    return e as Error & { code?: string }
  }
  throw new Error('did not reject')
}

netTest('methods and getters called on something that is not a listener: ERR_INVALID_ARG_TYPE', async (t) => {
  const proto = TcpListener.prototype as unknown as Record<string | symbol, unknown>
  const fakes = [Object.create(TcpListener.prototype), {}, null, undefined, 1]
  const getters = ['address', 'readyCount', 'connectionCount', 'droppedCount', 'errorCount', 'lastError', 'maxConnections', 'closed']
  for (const fake of fakes) {
    for (const g of getters) {
      const get = Object.getOwnPropertyDescriptor(proto, g)!.get!
      const e = errorOf(() => get.call(fake))
      t.is(e.code, 'ERR_INVALID_ARG_TYPE', g)
      t.true(e instanceof TypeError)
      t.is(e.message, 'The "this" argument must be an instance of TcpListener.')
    }
    const set = Object.getOwnPropertyDescriptor(proto, 'maxConnections')!.set!
    t.is(errorOf(() => set.call(fake, 1)).code, 'ERR_INVALID_ARG_TYPE')
    t.is(errorOf(() => (proto.close as () => void).call(fake)).code, 'ERR_INVALID_ARG_TYPE')
    const accept = (proto.accept as () => Promise<unknown>).call(fake)
    t.true(accept instanceof Promise, 'accept() threw instead of rejecting')
    t.is((await rejectionOf(accept)).code, 'ERR_INVALID_ARG_TYPE')
    const it = (proto[Symbol.asyncIterator] as () => AsyncIterator<unknown>).call(fake)
    t.is((await rejectionOf(it.next())).code, 'ERR_INVALID_ARG_TYPE')
  }
  const ring = new Ring()
  const l = TcpListener.bind(ring, { port: 0 })
  const Ctor = TcpListener as unknown as new (...a: unknown[]) => unknown
  t.is(errorOf(() => new Ctor(ring, {})).code, 'ERR_ILLEGAL_CONSTRUCTOR')
  t.is(errorOf(() => Reflect.construct(Ctor, [ring, Object.create(Object.getPrototypeOf(l))])).code, 'ERR_ILLEGAL_CONSTRUCTOR')
  l.close()
  ring.close()
})

test('a ring that is not one: ERR_INVALID_ARG_TYPE from bind, connect and fromFd', async (t) => {
  for (const ring of [Object.create(Ring.prototype), {}, null, 1]) {
    const e = errorOf(() => TcpListener.bind(ring, { port: 0 }))
    t.is(e.code, 'ERR_INVALID_ARG_TYPE')
    t.regex(e.message, /^The "ring" argument must be an instance of Ring\./)
    const c = TcpStream.connect(ring, { port: 1 })
    t.true(c instanceof Promise)
    t.is((await rejectionOf(c)).code, 'ERR_INVALID_ARG_TYPE')
    t.is(errorOf(() => TcpStream.fromFd(ring, 0)).code, 'ERR_INVALID_ARG_TYPE')
  }
})

type BadOpt = { opts: Record<string, unknown>; code: string; message?: RegExp }
const TYPE = 'ERR_INVALID_ARG_TYPE'
const RANGE = 'ERR_OUT_OF_RANGE'
const VALUE = 'ERR_INVALID_ARG_VALUE'
const badNumber = (name: string, max: number): BadOpt[] => [
  { opts: { [name]: '1' }, code: TYPE, message: new RegExp(`^The "options.${name}" property must be of type number\\. Received type string \\('1'\\)$`) },
  { opts: { [name]: 1n }, code: TYPE },
  { opts: { [name]: null }, code: TYPE, message: new RegExp(`^The "options.${name}" property must be of type number\\. Received null$`) },
  { opts: { [name]: {} }, code: TYPE },
  { opts: { [name]: true }, code: TYPE },
  { opts: { [name]: Symbol('s') }, code: TYPE },
  { opts: { [name]: Number.NaN }, code: RANGE, message: new RegExp(`^The value of "options.${name}" is out of range\\. It must be an integer\\. Received NaN$`) },
  { opts: { [name]: -1 }, code: RANGE, message: new RegExp(`^The value of "options.${name}" is out of range\\. It must be >= 0 && <= ${max}\\. Received -1$`) },
  { opts: { [name]: 0.5 }, code: RANGE },
  { opts: { [name]: -Infinity }, code: RANGE },
  { opts: { [name]: max + 1 }, code: RANGE },
]
const BAD_ADDRESS: BadOpt[] = [
  ...badNumber('port', 65535),
  { opts: { port: Infinity }, code: RANGE },
  { opts: { host: 1 }, code: TYPE, message: /^The "options.host" property must be of type string\. Received type number \(1\)$/ },
  { opts: { host: null }, code: TYPE },
  { opts: { host: '' }, code: VALUE, message: /^The property 'options.host' must be a numeric IPv4 or IPv6 address or a host name\. Received ''$/ },
  { opts: { host: 'fe80::1%lo' }, code: VALUE },
  { opts: { path: 1 }, code: TYPE, message: /^The "options.path" property must be of type string\./ },
  { opts: { path: null }, code: TYPE },
  { opts: { path: '' }, code: VALUE },
  { opts: { path: 'a\0b' }, code: VALUE },
  { opts: { path: 'x'.repeat(108) }, code: VALUE, message: /^The property 'options.path' must be a Unix socket path of 1 to 107 bytes without NUL\./ },
  { opts: { path: 'é'.repeat(54) }, code: VALUE },
]
const BAD_LISTEN: BadOpt[] = [
  ...BAD_ADDRESS.filter((b) => b.opts.host !== ''),
  // bind() is synchronous: it takes numeric hosts only (listen() resolves names).
  { opts: { host: '' }, code: VALUE, message: /^The property 'options.host' must be a numeric IPv4 or IPv6 address \(TcpListener.listen\(\) resolves names\)\. Received ''$/ },
  { opts: { host: 'localhost' }, code: VALUE, message: /^The property 'options.host' must be a numeric IPv4 or IPv6 address \(TcpListener.listen\(\) resolves names\)\. Received 'localhost'$/ },
  { opts: { host: '1.2.3' }, code: VALUE },
  ...badNumber('backlog', 2 ** 31 - 1),
  ...badNumber('readyLimit', 2 ** 31 - 1),
  ...badNumber('maxConnections', 2 ** 31 - 1),
  { opts: { onError: 1 }, code: TYPE, message: /^The "options.onError" property must be of type function\. Received type number \(1\)$/ },
  { opts: { onError: null }, code: TYPE },
  { opts: { onError: {} }, code: TYPE },
  { opts: { ipv6Only: 1 }, code: TYPE, message: /^The "options.ipv6Only" property must be of type boolean\. Received type number \(1\)$/ },
  { opts: { reusePort: 'yes' }, code: TYPE, message: /^The "options.reusePort" property must be of type boolean\./ },
  { opts: { reusePort: null }, code: TYPE },
]

function checkShape(t: { is(a: unknown, b: unknown, m?: string): void; true(v: boolean, m?: string): void; regex(s: string, r: RegExp, m?: string): void }, e: Error & { code?: string }, b: BadOpt, what: string): void {
  t.is(e.code, b.code, what)
  t.true(b.code === RANGE ? e instanceof RangeError : e instanceof TypeError, `${what}: ${e.constructor.name}`)
  if (b.message) t.regex(e.message, b.message, what)
}

netTest('bad options of every type: Node codes and message shapes, from bind (throws) and connect (rejects)', async (t) => {
  const ring = new Ring()
  for (const options of [null, 1, 'x', [], true]) {
    checkShape(t, errorOf(() => TcpListener.bind(ring, options as never)), { opts: {}, code: TYPE, message: /^The "options" argument must be of type object\./ }, `bind(${String(options)})`)
    checkShape(t, await rejectionOf(TcpStream.connect(ring, options as never)), { opts: {}, code: TYPE }, `connect(${String(options)})`)
  }
  for (const b of BAD_LISTEN) {
    const what = `bind ${String(Object.keys(b.opts))}: ${String(Object.values(b.opts)[0])}`
    checkShape(t, errorOf(() => TcpListener.bind(ring, { port: 0, ...b.opts } as never)), b, what)
  }
  for (const b of BAD_ADDRESS) {
    const what = `connect ${String(Object.keys(b.opts))}: ${String(Object.values(b.opts)[0])}`
    const p = TcpStream.connect(ring, { port: 1, ...b.opts } as never)
    t.true(p instanceof Promise, what)
    checkShape(t, await rejectionOf(p), b, what)
  }
  // What is valid is accepted.
  const l = TcpListener.bind(ring, { port: 0, backlog: 0, readyLimit: 0, maxConnections: Infinity, onError: undefined })
  t.is(l.maxConnections, Infinity)
  for (const v of [0, 5, Infinity]) {
    l.maxConnections = v
    t.is(l.maxConnections, v)
  }
  for (const b of badNumber('maxConnections', 2 ** 31 - 1)) {
    const e = errorOf(() => (l.maxConnections = b.opts.maxConnections as number))
    checkShape(t, e, { ...b, message: undefined }, `maxConnections = ${String(b.opts.maxConnections)}`)
  }
  t.is(l.maxConnections, Infinity)
  l.close()
  ring.close()
  t.is(errorOf(() => TcpListener.bind(ring, { port: 0 })).code, 'ERR_ZCIO_CLOSED')
})
