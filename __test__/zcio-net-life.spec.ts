// zcio.net over the life of a process and its threads: the default ring is
// released once nothing uses it and made again on next use, a process
// whose sockets are closed exits by itself, workers with sockets and
// servers mid-transfer can be terminated, sockets dropped without close are
// collected, and the given { ring, group } are used and left open.

import test from 'ava'
import { spawnSync } from 'node:child_process'
import { once } from 'node:events'
import * as path from 'node:path'
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import { needsSerial, root, slow, zcio } from './support.js'
import { closed, listen, stalled, turn, zcioNet } from './zcio-net-support.js'

// One at a time: they count the users of the default ring.
const netTest = needsSerial('bufRing')
const context = createRequire(import.meta.url)(path.join(root, 'lib', 'net-context.js')) as { defaultUsers(): number }

netTest('the default ring is used while sockets and servers live, and released after', async (t) => {
  await turn(5)
  t.is(context.defaultUsers(), 0)
  const { server, port } = await listen(zcioNet, {}, (s) => s.end('x'))
  t.is(context.defaultUsers(), 1, 'the listening server')
  const c = zcioNet.connect(port, '127.0.0.1')
  c.resume()
  await once(c, 'connect')
  t.true(context.defaultUsers() >= 2)
  await once(c, 'close')
  await closed(server)
  await turn(5)
  t.is(context.defaultUsers(), 0, 'all released')
  // And made again on next use.
  const again = await listen(zcioNet, {}, () => {})
  t.is(context.defaultUsers(), 1)
  await closed(again.server)
})

netTest('a process whose zcio.net sockets are closed exits by itself, with nothing left to wait for', (t) => {
  const script = `
    const { net } = require(${JSON.stringify(root)})
    const server = net.createServer((s) => s.pipe(s))
    server.listen(0, '127.0.0.1', () => {
      const c = net.connect(server.address().port, '127.0.0.1')
      c.end('ping')
      c.on('data', (d) => process.stdout.write(String(d)))
      c.on('close', () => server.close())
    })`
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 * slow })
  t.is(r.status, 0, r.stderr)
  t.is(r.stdout, 'ping')
})

netTest('workers with zcio.net servers and sockets mid-transfer can be terminated; the main thread goes on', async (t) => {
  const code = `
    const { parentPort, workerData } = require('worker_threads')
    const { net } = require(workerData.root)
    const server = net.createServer((s) => s.pipe(s))
    server.listen(0, '127.0.0.1', () => {
      for (let i = 0; i < 4; i++) {
        const c = net.connect(server.address().port, '127.0.0.1')
        const block = Buffer.alloc(256 * 1024, i)
        const pump = () => { while (c.write(block)) {} }
        c.on('drain', pump)
        c.on('connect', pump)
        c.on('data', () => {})
        c.on('error', () => {})
      }
      setTimeout(() => parentPort.postMessage('busy'), 50)
    })`
  for (let round = 0; round < 4; round++) {
    const w = new Worker(code, { eval: true, workerData: { root } })
    const [m] = (await once(w, 'message')) as [string]
    t.is(m, 'busy')
    await w.terminate()
  }
  // The main thread's own default ring is untouched.
  const { server, port } = await listen(zcioNet, {}, (s) => s.end('still here'))
  const c = zcioNet.connect(port, '127.0.0.1')
  c.setEncoding('utf8')
  let text = ''
  c.on('data', (d: string) => (text += d))
  await once(c, 'close')
  t.is(text, 'still here')
  await closed(server)
})

netTest('sockets dropped without close end with their peer, release the default ring and are collected', async (t) => {
  const gc = (globalThis as { gc?: () => void }).gc
  const { server, port } = await listen(zcioNet, {}, (s) => s.end())
  let collected = 0
  const registry = new FinalizationRegistry(() => collected++)
  // Made in a function of their own, so that no frame of the test keeps one.
  const drop = (): void => {
    for (let i = 0; i < 50; i++) {
      const c = zcioNet.connect(port, '127.0.0.1')
      c.on('error', () => {})
      c.resume()
      registry.register(c, i)
    }
  }
  drop()
  for (let i = 0; i < 200 && context.defaultUsers() > 1; i++) await turn(10)
  t.is(context.defaultUsers(), 1, 'only the server is left')
  await closed(server)
  await turn(5)
  t.is(context.defaultUsers(), 0)
  if (!gc) return t.log('run without --expose-gc: collection not checked')
  for (let i = 0; i < 20 && collected < 50; i++) {
    gc()
    await turn(10)
  }
  t.is(collected, 50, 'every socket was collected')
})

netTest('a given ring and group are used, and left open when the sockets close', async (t) => {
  const ring = new zcio.Ring()
  const group = new zcio.BufferGroup(ring, { groupId: 9, bufferSize: 4096, bufferCount: 8 })
  const before = context.defaultUsers()
  const server = zcio.net.createServer({ ring, group }, (s) => s.end('own ring'))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as { port: number }).port
  const c = new zcio.net.Socket({ ring, group })
  c.connect(port, '127.0.0.1')
  c.setEncoding('utf8')
  let text = ''
  c.on('data', (d: string) => (text += d))
  await once(c, 'close')
  t.is(text, 'own ring')
  t.is(context.defaultUsers(), before, 'the default ring was not used')
  await new Promise<void>((r) => server.close(() => r()))
  t.false(ring.closed)
  t.false(group.closed)
  t.throws(() => new zcio.net.Socket({ ring, group: {} }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => zcio.net.createServer({ ring: {} as never, group }), { code: 'ERR_INVALID_ARG_TYPE' })
  group.close()
  ring.close()
})

/** A child process running `body` with `net` bound to node:net or to zcio.net; its output and exit status. */
function runWith(which: 'node' | 'zcio', body: string): { status: number | null; out: string; err: string } {
  const net = which === 'node' ? `require('node:net')` : `require(${JSON.stringify(root)}).net`
  const script = `
    const net = ${net}
    const say = (s) => process.stdout.write(s + '\\n')
    process.on('exit', () => say('exit'))
    ${body}`
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 * slow })
  return { status: r.status, out: r.stdout, err: r.stderr }
}

const unrefCases: [string, string, string][] = [
  [
    'an idle connection whose ends are unref()ed, on an unref()ed server, lets the process exit',
    `const server = net.createServer((s) => s.unref())
     server.listen(0, '127.0.0.1', () => {
       server.unref()
       const c = net.connect(server.address().port, '127.0.0.1', () => { say('connected'); c.unref() })
     })`,
    'connected\nexit\n',
  ],
  [
    'a socket unref()ed while it connects still connects first',
    `const server = net.createServer((s) => s.unref())
     server.listen(0, '127.0.0.1', () => {
       server.unref()
       const c = net.connect(server.address().port, '127.0.0.1', () => say('connected'))
       c.unref()
     })`,
    'connected\nexit\n',
  ],
  [
    'an unref()ed socket keeps the process alive while its writes are under way',
    `const server = net.createServer((s) => {
       s.pause()
       s.unref()
       s.on('data', () => {})
       setTimeout(() => { say('reading'); s.resume() }, 200).unref()
     })
     server.listen(0, '127.0.0.1', () => {
       server.unref()
       const c = net.connect(server.address().port, '127.0.0.1', () => {
         c.write(Buffer.alloc(32 << 20), () => say('written'))
         c.unref()
       })
     })`,
    'reading\nwritten\nexit\n',
  ],
  [
    'ref() after unref() holds the process again',
    `const server = net.createServer(() => {})
     server.listen(0, '127.0.0.1', () => {
       server.unref()
       server.ref()
       const c = net.connect(server.address().port, '127.0.0.1', () => {
         c.unref()
         c.ref()
         setTimeout(() => { say('still alive'); c.destroy(); server.close() }, 100).unref()
       })
     })`,
    'still alive\nexit\n',
  ],
  [
    'an unref()ed listening server alone lets the process exit',
    `const server = net.createServer(() => {})
     server.listen(0, '127.0.0.1', () => say('listening'))
     server.unref()
     setTimeout(() => say('held'), 2000).unref()`,
    'listening\nexit\n',
  ],
]

for (const [title, body, expected] of unrefCases) {
  netTest(`ref/unref as node:net: ${title}`, (t) => {
    const node = runWith('node', body)
    const ours = runWith('zcio', body)
    t.is(node.status, 0, node.err)
    t.is(node.out, expected, 'node:net (the oracle) does what the test expects')
    t.is(ours.status, 0, ours.err)
    t.is(ours.out, node.out)
  })
}

netTest('a socket of the default ring destroyed while its connect hangs releases the ring', async (t) => {
  const { server, port } = await listen(zcioNet, {}, () => {})
  const hang = await stalled(port)
  try {
    const before = context.defaultUsers()
    const c = zcioNet.connect(port, hang.host)
    c.on('error', () => {})
    await turn(50)
    t.true(c.connecting)
    t.is(context.defaultUsers(), before + 1)
    c.destroy()
    await once(c, 'close')
    t.false(c.connecting)
    for (let i = 0; i < 50 && context.defaultUsers() > before; i++) await turn(5)
    t.is(context.defaultUsers(), before, 'the connect was cancelled and the socket let go')
  } finally {
    hang.close()
    await closed(server)
  }
})
