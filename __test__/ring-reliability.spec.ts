// The ring's own guarantees, each found broken once: a chain of linked sends
// reaches an SQPOLL kernel thread whole; work queued on one ring from the
// completions of another is submitted; a closed ring holds no descriptor.

import { spawnSync } from 'node:child_process'
import { needs, probed, root, zcio } from './support.js'
import { payload } from './net-support.js'

const { Ring, RegisteredBufferPool, BufferGroup, TcpStream, TcpListener } = zcio
type Ring = InstanceType<typeof Ring>
type Stream = InstanceType<typeof TcpStream>
type Group = InstanceType<typeof BufferGroup>

const netTest = needs('bufRing')
const sqpollTest = needs('bufRing', 'sqpoll')

async function pair(server: Ring, client: Ring = server): Promise<{ a: Stream; b: Stream; close(): Promise<void> }> {
  const listener = TcpListener.bind(server, { port: 0 })
  const accepted = listener.accept()
  const b = await TcpStream.connect(client, { port: listener.address.port! })
  const a = (await accepted)!
  return {
    a,
    b,
    async close() {
      await a.close()
      await b.close()
      listener.close()
    },
  }
}

async function receiveAll(group: Group, s: Stream): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const c of group.recvMultishot(s)) {
    parts.push(Buffer.from(c.data))
    c.release()
  }
  return Buffer.concat(parts)
}

/** Where two buffers first differ, for a readable failure. */
function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i
  return n
}

sqpollTest('SQPOLL: linked sends of one stream arrive in order', async (t) => {
  const ring = new Ring({ sqpoll: true })
  t.true(ring.features.sqpoll)
  const { a, b, close } = await pair(ring)
  const group = new BufferGroup(ring, { groupId: 5, bufferSize: 65536, bufferCount: 64 })
  const chunk = 64 << 10
  const count = 16
  const pool = new RegisteredBufferPool(ring, chunk, count)
  const data = payload(chunk * count * 8, 11)
  const got = receiveAll(group, a)
  // Each round queues 16 sends while the first is in flight: the other 15
  // go to the kernel as one chain of linked operations. Pool sends and
  // zero-copy sends are one operation each (plain Uint8Array sends would be
  // merged into one vectored send).
  const indices = Array.from({ length: count }, () => pool.acquire().index)
  for (let off = 0; off < data.length; off += chunk * count) {
    const sends: Promise<unknown>[] = []
    for (let k = 0; k < count; k++) {
      const part = data.subarray(off + k * chunk, off + (k + 1) * chunk)
      if (k % 2 === 0 || !probed.sendZc) {
        pool.get(indices[k]).set(part)
        sends.push(b.send({ pool, index: indices[k] }))
      } else {
        sends.push(b.sendZc(part))
      }
    }
    await Promise.all(sends)
  }
  b.shutdown()
  const received = await got
  t.is(received.length, data.length)
  t.true(received.equals(data), `bytes out of order from offset ${firstDifference(received, data)}`)
  for (const i of indices) pool.release(i)
  await close()
  pool.close()
  group.close()
  ring.close()
})

/**
 * Runs `body` (CommonJS, zcio loaded as `z`, `done()` to report success) in a
 * fresh Node process that has no timer of its own: a hang there is a hang of
 * zcio's driving, not hidden by a timer that happens to wake the loop.
 */
function runChild(body: string, opts: { shell?: string; worker?: boolean } = {}): ReturnType<typeof spawnSync> {
  const main = `const z = require(${JSON.stringify(root)});\nconst done = () => console.log('DONE');\n(async () => {\n${body}\n})().catch((e) => { console.error(e); process.exit(1) })`
  const script = opts.worker
    ? `const { Worker } = require('node:worker_threads');
       const w = new Worker(${JSON.stringify(main)}, { eval: true });
       w.on('error', (e) => { console.error(e); process.exit(1) });
       w.on('exit', (c) => process.exit(c));`
    : main
  if (opts.shell !== undefined) {
    return spawnSync('sh', ['-c', `${opts.shell}; exec "$0" -e "$1"`, process.execPath, script], {
      encoding: 'utf8',
      timeout: 60_000,
    })
  }
  return spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 })
}

/**
 * Ping-pong across two rings: pair X lives on the older ring A, pair Y on the
 * newer ring B. What X receives is relayed by a send on Y and back. libuv runs
 * the newer ring's prepare handle first, so a completion A settles in its own
 * prepare queues work on B after B's prepare has run; nothing but that work
 * would wake the loop again. Then connects and accepts on B from A's
 * completions, and on A from B's.
 */
const crossRing = `
  const pair = async (listenOn, connectOn) => {
    const l = z.TcpListener.bind(listenOn, { port: 0 })
    const accepted = l.accept()
    const b = await z.TcpStream.connect(connectOn, { port: l.address.port })
    return { l, a: await accepted, b }
  }
  const A = new z.Ring()
  const B = new z.Ring()
  const x = await pair(A, A)
  const y = await pair(B, B)
  const gx = new z.BufferGroup(A, { groupId: 1, bufferSize: 4096, bufferCount: 8 })
  const gy = new z.BufferGroup(B, { groupId: 2, bufferSize: 4096, bufferCount: 8 })
  const rounds = 500
  const msg = Buffer.from('p')
  const relay = async (group, from, to) => {
    let n = 0
    for await (const c of group.recvMultishot(from)) {
      n += c.data.length
      c.release()
      await to.send(msg)
      if (n === rounds) break
    }
    return n
  }
  const xy = relay(gx, x.a, y.b)
  const yx = relay(gy, y.a, x.b)
  await x.b.send(msg)
  const [nx, ny] = await Promise.all([xy, yx])
  if (nx !== rounds || ny !== rounds) throw new Error('relayed ' + nx + ' and ' + ny)
  // Connect and accept on one ring right after a completion of the other.
  for (let k = 0; k < 50; k++) {
    const [on, other] = k % 2 === 0 ? [B, A] : [A, B]
    const p = await pair(on, other)
    const q = await pair(other, on)
    await p.b.send(msg)
    await q.b.send(msg)
    for (const s of [p.a, p.b, q.a, q.b]) await s.close()
    p.l.close()
    q.l.close()
  }
  for (const s of [x.a, x.b, y.a, y.b]) await s.close()
  x.l.close()
  y.l.close()
  A.close()
  B.close()
  done()
`

netTest('work queued on one ring from the completions of another is submitted', (t) => {
  const r = runChild(crossRing)
  t.is(r.signal, null, `the child hung (killed by ${r.signal}): ${r.stderr}`)
  t.is(r.status, 0, String(r.stderr))
  t.regex(String(r.stdout), /DONE/)
})

netTest('work queued on one ring from the completions of another is submitted, in a worker', (t) => {
  const r = runChild(crossRing, { worker: true })
  t.is(r.signal, null, `the child hung (killed by ${r.signal}): ${r.stderr}`)
  t.is(r.status, 0, String(r.stderr))
  t.regex(String(r.stdout), /DONE/)
})

const ringTest = needs()

ringTest('a closed ring holds no descriptor: 1000 rings kept referenced under ulimit -n 128', (t) => {
  const r = runChild(
    `
    const kept = []
    for (let i = 0; i < 1000; i++) {
      const ring = new z.Ring({ entries: 4 })
      ring.close()
      kept.push(ring)
    }
    // Every later use of a closed ring says so, and touches no descriptor.
    const codes = new Set()
    for (const ring of kept.slice(0, 10)) {
      try { ring.submit() } catch (e) { codes.add(e.code) }
      ring.close()
    }
    if ([...codes].join() !== 'ERR_ZCIO_CLOSED') throw new Error('submit on a closed ring: ' + [...codes])
    done()
  `,
    { shell: 'ulimit -n 128' },
  )
  t.is(r.status, 0, String(r.stderr))
  t.regex(String(r.stdout), /DONE/)
})
