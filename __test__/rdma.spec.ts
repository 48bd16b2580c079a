import test from 'ava'
import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { readmeBlock } from './readme-examples.js'
import { root, zcio } from './support.js'

const { rdma, probe } = zcio
type QueuePair = ReturnType<ReturnType<ReturnType<typeof rdma.open>['allocPd']>['createQp']>['handshake'] extends (...a: never[]) => infer R ? R : never

const p = probe()
const required = process.env.ZCIO_REQUIRE_RDMA === '1'
/** Runs where a device is usable (the Soft-RoCE VM of `npm run test:rdma`); a visible skip elsewhere. */
const rdmaTest = p.rdma || required ? test.serial : test.skip
if (!p.rdma && !required) console.warn(`zcio: skipping RDMA tests: ${p.rdmaReason}`)

test('without a device, RDMA calls say what is missing', (t) => {
  if (p.rdma) return t.pass('a device is present')
  const e = t.throws(() => rdma.open()) as NodeJS.ErrnoException
  t.is(e.code, 'ERR_ZCIO_RDMA_UNAVAILABLE')
  t.is(p.rdmaReason, e.message)
})

test('close() of each RDMA class is part of the API', (t) => {
  const proto = (c: { prototype: object }) => Object.getOwnPropertyNames(c.prototype)
  const native = createRequire(import.meta.url)(join(root, 'binding.js'))
  for (const c of ['RdmaContext', 'RdmaProtectionDomain', 'RdmaCompletionQueue', 'RdmaPreparedQueuePair', 'RdmaQueuePair', 'RdmaMemoryRegion']) {
    t.true(proto(native[c]).includes('close'), `${c}.close`)
  }
})

function setup() {
  const ctx = rdma.open(process.env.ZCIO_RDMA_DEVICE)
  const pd = ctx.allocPd()
  const cqA = ctx.createCq(64)
  const cqB = ctx.createCq(64)
  const pa = pd.createQp(cqA, cqA)
  const pb = pd.createQp(cqB, cqB)
  const a: QueuePair = pa.handshake(pb.endpoint())
  const b: QueuePair = pb.handshake(pa.endpoint())
  return { ctx, pd, cqA, cqB, a, b, mrA: pd.allocate(65536), mrB: pd.allocate(65536) }
}

rdmaTest('devices, endpoints and argument checks', (t) => {
  const devs = rdma.devices()
  t.true(devs.length > 0)
  t.regex(devs[0].guid, /^[0-9a-f]{16}$/)
  t.true(devs[0].ports >= 1)
  const s = setup()
  t.throws(() => s.pd.allocate(0), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => s.a.postSend(s.mrA, 0, 65537, 1), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => s.a.postSend({} as never, 0, 1, 1), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => s.a.postSend(s.mrA, 0, 1, -1), { code: 'ERR_OUT_OF_RANGE' })
})

rdmaTest('send/receive a random payload byte-exact, with immediate data; wait() on the event loop', async (t) => {
  const s = setup()
  for (let i = 0; i < 8192; i++) s.mrA.buffer[i] = (i * 7 + 3) & 0xff
  s.b.postReceive(s.mrB, 0, 8192, 11)
  s.a.postSendSges([{ mr: s.mrA, start: 0, end: 4096 }, { mr: s.mrA, start: 4096, end: 8192 }], 12, 0xabcdef)
  t.throws(() => s.mrA.close(), { code: 'ERR_ZCIO_MR_IN_USE' })
  const [sent] = await s.cqA.wait()
  t.like(sent, { wrId: 12, status: 0, opcode: 'send' })
  const [got] = await s.cqB.wait()
  t.like(got, { wrId: 11, status: 0, opcode: 'recv', byteLen: 8192, immData: 0xabcdef })
  t.deepEqual(s.mrB.buffer.subarray(0, 8192), s.mrA.buffer.subarray(0, 8192))
  t.is(s.mrA.inUse, 0)
  s.mrA.close()
})

rdmaTest('RDMA WRITE and READ', async (t) => {
  const s = setup()
  s.mrA.buffer.fill(0x11, 0, 256)
  s.a.postWrite([{ mr: s.mrA, start: 0, end: 256 }], s.mrB.addr + 512, s.mrB.rkey, 1)
  t.like((await s.cqA.wait())[0], { wrId: 1, opcode: 'rdma-write', status: 0 })
  t.true(s.mrB.buffer.subarray(512, 768).every((b) => b === 0x11))
  s.mrB.buffer.fill(0x22, 1024, 1280)
  s.a.postRead([{ mr: s.mrA, start: 2048, end: 2304 }], s.mrB.addr + 1024, s.mrB.rkey, 2)
  t.like((await s.cqA.wait())[0], { wrId: 2, opcode: 'rdma-read', status: 0 })
  t.true(s.mrA.buffer.subarray(2048, 2304).every((b) => b === 0x22))
})

rdmaTest('a queue pair forced into the error state flushes every outstanding wrId', async (t) => {
  const s = setup()
  for (let i = 0; i < 16; i++) s.b.postReceive(s.mrB, i * 64, i * 64 + 64, 100 + i)
  t.is(s.b.outstanding, 16)
  t.throws(() => s.mrB.close(), { code: 'ERR_ZCIO_MR_IN_USE' })
  s.b.setError()
  const flushed = []
  while (flushed.length < 16) flushed.push(...(await s.cqB.wait(16)))
  t.deepEqual(flushed.map((c) => c.wrId).sort((x, y) => x - y), Array.from({ length: 16 }, (_, i) => 100 + i))
  t.true(flushed.every((c) => c.status === 5))
  t.is(s.b.outstanding, 0)
  s.mrB.close()
})

/**
 * Runs `cmd` (killed after 90 s), resolving with its exit code and output;
 * `ready` resolves when its output first matches `readyWhen`.
 */
function run(cmd: string, args: string[], readyWhen?: RegExp, ready?: () => void): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 90_000 })
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
      if (readyWhen?.test(out)) ready?.()
    })
    child.stderr.on('data', (d) => (out += d))
    child.on('close', (code) => resolve({ code, out }))
    child.on('error', (e) => resolve({ code: -1, out: String(e) }))
  })
}

const pingpong = join(import.meta.dirname, 'rdma-pingpong.js')
const ITERS = '100'

for (const zcioRole of ['server', 'client'] as const) {
  rdmaTest(`interop with rdma-core's ibv_rc_pingpong, zcio as ${zcioRole}`, async (t) => {
    const port = String(18515 + (zcioRole === 'server' ? 1 : 2))
    const tool = ['-g', '1', '-n', ITERS, '-s', '4096', '-p', port]
    let ours: ReturnType<typeof run>
    let theirs: ReturnType<typeof run>
    if (zcioRole === 'server') {
      // The tool connects once, so start it only when our server listens
      // (Node takes seconds to start in the VM).
      let listening!: () => void
      const up = new Promise<void>((r) => (listening = r))
      ours = run(process.execPath, [pingpong, 'server', port, ITERS, '4096'], /listening on/, listening)
      await Promise.race([up, ours])
      theirs = run('ibv_rc_pingpong', [...tool, '127.0.0.1'])
    } else {
      // Our client retries its connection until the tool listens.
      theirs = run('ibv_rc_pingpong', tool)
      ours = run(process.execPath, [pingpong, 'client', '127.0.0.1', port, ITERS, '4096'])
    }
    const [a, b] = await Promise.all([ours, theirs])
    t.is(a.code, 0, a.out)
    t.is(b.code, 0, b.out)
    t.regex(a.out, new RegExp(`OK ${ITERS} iterations, ${Number(ITERS) * 4096} bytes checked`))
    t.regex(b.out, new RegExp(`${ITERS} iters in`))
    t.log(b.out.trim().split('\n').pop())
  })
}

rdmaTest('ZeroCopyBufferManager over RDMA: header + data as one two-SGE message, keys back, pending keys flushed', async (t) => {
  const s = setup()
  const m = new zcio.ZeroCopyBufferManager({ dataSize: 65536, headerSize: 32, headerCount: 2 }, s.pd)
  const reg = m.getMr()
  t.is(reg.kind, 'rdma')
  for (let i = 0; i < 1024; i++) m.data[i] = (i * 13) & 0xff
  s.b.postReceive(s.mrB, 0, 4096, 1)
  m.send(s.a, Buffer.from('HEADER'), 10, 500, 77)
  t.deepEqual(m.getPendingSends(), [77])
  const [wc] = await s.cqA.wait()
  t.is(m.handle(wc), 77)
  t.deepEqual(m.getPendingSends(), [])
  const [rx] = await s.cqB.wait()
  t.is(rx.byteLen, 6 + 500)
  t.deepEqual(Buffer.from(s.mrB.buffer.subarray(0, 506)), Buffer.concat([Buffer.from('HEADER'), Buffer.from(m.data.subarray(10, 510))]))
  // Exhaustion, then a queue pair in error reports both pending keys.
  m.send(s.a, Buffer.from('h1'), 0, 10, 1)
  m.send(s.a, Buffer.from('h2'), 0, 10, 2)
  t.throws(() => m.send(s.a, Buffer.from('h3'), 0, 10, 3), { code: 'ERR_ZCIO_NO_BUFFERS' })
  t.throws(() => m.close(), { code: 'ERR_ZCIO_SENDS_PENDING' })
  t.is(m.getNumAvailableBuffers(), 0)
  s.a.setError() // no receive at the peer: both sends are still outstanding
  while (m.getPendingSends().length > 0) for (const c of await s.cqA.wait()) m.handle(c)
  const it = m.completed()
  const reported = [(await it.next()).value, (await it.next()).value, (await it.next()).value]
  t.is(reported[0].key, 77)
  t.is(reported[0].error, undefined)
  t.deepEqual(reported.slice(1).map((d) => d.key).sort(), [1, 2])
  t.true(reported.slice(1).every((d) => d.error !== undefined), 'flushed sends carry an error')
  // Its regions released, the domain closes once the rest is closed in order.
  m.close()
  t.throws(() => m.getHeader(Buffer.from('x'), 1), { code: 'ERR_ZCIO_CLOSED' })
  s.a.close()
  s.b.close()
  while (s.a.outstanding + s.b.outstanding > 0) {
    s.cqA.poll(16)
    s.cqB.poll(16)
    await new Promise((r) => setTimeout(r, 5))
  }
  s.mrA.close()
  s.mrB.close()
  s.cqA.close()
  s.cqB.close()
  s.pd.close()
  s.ctx.close()
})

const sorted = (xs: number[]) => [...xs].sort((x, y) => x - y)

rdmaTest('close out of order is refused, in order releases everything; twice is a no-op; any use after close throws ERR_ZCIO_CLOSED', async (t) => {
  const ctx = rdma.open(process.env.ZCIO_RDMA_DEVICE)
  const pd = ctx.allocPd()
  const cq = ctx.createCq(16)
  const prepared = pd.createQp(cq, cq)
  const peer = pd.createQp(cq, cq)
  const ep = peer.endpoint()
  const qp = prepared.handshake(ep)
  const mr = pd.allocate(4096)

  t.throws(() => ctx.close(), { code: 'ERR_ZCIO_CONTEXT_IN_USE' })
  t.throws(() => pd.close(), { code: 'ERR_ZCIO_PD_IN_USE' })
  t.throws(() => cq.close(), { code: 'ERR_ZCIO_CQ_IN_USE' })
  qp.postReceive(mr, 0, 64, 1)
  t.throws(() => mr.close(), { code: 'ERR_ZCIO_MR_IN_USE' })
  qp.setError()
  t.like((await cq.wait())[0], { wrId: 1, status: 5 })
  // Refusals changed nothing: the objects still work.
  t.is(mr.inUse, 0)
  t.deepEqual(cq.poll(), [])

  qp.close()
  t.true(qp.closed)
  t.throws(() => cq.close(), { code: 'ERR_ZCIO_CQ_IN_USE' }, 'the prepared queue pair still uses it')
  peer.close()
  t.throws(() => pd.close(), { code: 'ERR_ZCIO_PD_IN_USE' }, 'the region is open')
  cq.close()
  mr.close()
  t.throws(() => ctx.close(), { code: 'ERR_ZCIO_CONTEXT_IN_USE' }, 'the domain is open')
  pd.close()
  ctx.close()
  for (const o of [qp, peer, cq, mr, pd, ctx]) t.notThrows(() => o.close(), 'closing twice')

  t.throws(() => qp.postSend(mr, 0, 1, 1), { code: 'ERR_ZCIO_CLOSED' })
  t.throws(() => qp.postReceive(mr, 0, 1, 1), { code: 'ERR_ZCIO_CLOSED' })
  t.throws(() => qp.postWrite([{ mr, start: 0, end: 1 }], mr.addr, mr.rkey, 1), { code: 'ERR_ZCIO_CLOSED' })
  t.throws(() => qp.setError(), { code: 'ERR_ZCIO_CLOSED' })
  t.throws(() => peer.handshake(ep), { code: 'ERR_ZCIO_CLOSED' })
  t.throws(() => cq.poll(), { code: 'ERR_ZCIO_CLOSED' })
  await t.throwsAsync(cq.wait(), { code: 'ERR_ZCIO_CLOSED' })
  t.throws(() => pd.allocate(64), { code: 'ERR_ZCIO_CLOSED' })
  t.throws(() => pd.createQp(cq, cq), { code: 'ERR_ZCIO_CLOSED' })
  t.throws(() => ctx.allocPd(), { code: 'ERR_ZCIO_CLOSED' })
  t.throws(() => ctx.createCq(4), { code: 'ERR_ZCIO_CLOSED' })
  t.is(mr.buffer[0], 0, 'a closed region stays readable')
})

rdmaTest('closing a queue pair with work outstanding flushes it: every wrId comes back, then it is destroyed', async (t) => {
  const s = setup()
  for (let i = 0; i < 8; i++) s.b.postReceive(s.mrB, i * 64, i * 64 + 64, 100 + i)
  s.a.postSend(s.mrA, 0, 64, 7) // lands in b's first receive
  s.a.postSend(s.mrA, 64, 128, 8)
  const early: number[] = []
  for (const c of await s.cqA.wait()) early.push(c.wrId)
  s.b.close()
  s.a.close()
  t.true(s.b.closed)
  t.throws(() => s.b.postReceive(s.mrB, 0, 1, 1), { code: 'ERR_ZCIO_CLOSED' })
  t.throws(() => s.cqB.close(), { code: 'ERR_ZCIO_CQ_IN_USE' }, 'flushed completions not polled yet')
  t.throws(() => s.mrB.close(), { code: 'ERR_ZCIO_MR_IN_USE' })
  t.throws(() => s.pd.close(), { code: 'ERR_ZCIO_PD_IN_USE' })
  const got = []
  while (s.b.outstanding > 0) got.push(...(await s.cqB.wait(16)))
  t.is(got.length, 8)
  t.deepEqual(sorted(got.map((c) => c.wrId)), Array.from({ length: 8 }, (_, i) => 100 + i))
  t.true(got.filter((c) => c.status === 5).length >= 6, 'the receives not used are flushed')
  const sent = [...early]
  while (s.a.outstanding > 0) for (const c of await s.cqA.wait(16)) sent.push(c.wrId)
  t.deepEqual(sorted(sent), [7, 8])
  // Drained: destroyed, so everything closes in order.
  s.cqA.close()
  s.cqB.close()
  s.mrA.close()
  s.mrB.close()
  s.pd.close()
  s.ctx.close()
})

rdmaTest('closing a completion queue rejects its pending wait() with ERR_ZCIO_CLOSED', async (t) => {
  const ctx = rdma.open(process.env.ZCIO_RDMA_DEVICE)
  const cq = ctx.createCq(4)
  const pending = cq.wait()
  const second = cq.wait(2)
  cq.close()
  await t.throwsAsync(pending, { code: 'ERR_ZCIO_CLOSED' })
  await t.throwsAsync(second, { code: 'ERR_ZCIO_CLOSED' })
  ctx.close()
})

rdmaTest('a completion queue collected with a wait() pending rejects it instead of leaving it unsettled', async (t) => {
  // The layer keeps a waiting queue referenced; the native object alone can
  // be collected mid-wait.
  const native = createRequire(import.meta.url)(join(root, 'binding.js'))
  const ctx = native.RdmaContext.open(process.env.ZCIO_RDMA_DEVICE ?? null)
  let cq = ctx.createCq(4)
  const pending: Promise<unknown> = cq.wait(1)
  cq = null
  for (let i = 0; i < 20; i++) {
    globalThis.gc?.()
    await new Promise((r) => setImmediate(r))
  }
  await t.throwsAsync(pending as Promise<unknown>, { code: 'ERR_ZCIO_CLOSED' })
  ctx.close() // the collected queue was destroyed
})

rdmaTest('objects collected mid-flight in any order free nothing the device still uses', async (t) => {
  for (let round = 0; round < 3; round++) {
    ;(() => {
      const s = setup()
      s.b.postReceive(s.mrB, 0, 4096, 1)
      s.a.postSend(s.mrA, 0, 64, 2)
      s.a.postSend(s.mrA, 64, 128, 3) // no receive for it: outstanding
      if (round === 1) s.a.close()
      if (round === 2) s.b.close()
    })()
    for (let i = 0; i < 5; i++) {
      globalThis.gc?.()
      await new Promise((r) => setImmediate(r))
    }
  }
  // The device and the addon still work.
  const s = setup()
  s.b.postReceive(s.mrB, 0, 64, 1)
  s.a.postSend(s.mrA, 0, 64, 2)
  t.like((await s.cqB.wait())[0], { wrId: 1, status: 0 })
})

rdmaTest('batch posts, pollInto and pathMtu', async (t) => {
  const ctx = rdma.open(process.env.ZCIO_RDMA_DEVICE)
  const pd = ctx.allocPd()
  const cq = ctx.createCq(64)
  t.throws(() => pd.createQp(cq, cq, { pathMtu: 1000 }), { code: 'ERR_INVALID_ARG_VALUE' })
  const pa = pd.createQp(cq, cq, { pathMtu: 4096, maxSendWr: 8, maxRecvWr: 16 })
  const pb = pd.createQp(cq, cq, { pathMtu: 4096, maxSendWr: 8, maxRecvWr: 16 })
  const a = pa.handshake(pb.endpoint())
  const b = pb.handshake(pa.endpoint())
  const src = pd.allocate(65536)
  const dst = pd.allocate(65536)
  for (let i = 0; i < 65536; i++) src.buffer[i] = (i * 7) % 253
  t.throws(() => a.postSendBatch(src, [0, 1]), { code: 'ERR_INVALID_ARG_VALUE' })
  t.throws(() => a.postSendBatch(src, [0, 1, -1]), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => b.postReceiveBatch(dst, [0, 10, 1, 0, 70000, 2]), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => cq.pollInto([] as never), { code: 'ERR_INVALID_ARG_TYPE' })
  t.is(b.outstanding, 0, 'a bad triple posts none')
  t.is(b.postReceiveBatch(dst, new Float64Array([0, 8192, 100, 8192, 16384, 101, 16384, 24576, 102])), 3)
  t.is(a.postSendBatch(src, [0, 8192, 1, 8192, 16384, 2, 16384, 24576, 3]), 3)
  t.is(src.inUse, 3)
  const out = new Float64Array(6 * 16)
  const seen: number[][] = []
  while (seen.length < 6) {
    const n = cq.pollInto(out, 100_000)
    for (let i = 0; i < n; i++) seen.push(Array.from(out.subarray(6 * i, 6 * i + 6)))
  }
  const recvs = seen.filter((r) => r[2] === 128)
  t.deepEqual(sorted(recvs.map((r) => r[0])), [100, 101, 102])
  t.true(recvs.every((r) => r[1] === 0 && r[3] === 8192 && r[4] === -1 && r[5] === b.qpn))
  t.deepEqual(sorted(seen.filter((r) => r[2] === 0).map((r) => r[0])), [1, 2, 3])
  t.deepEqual(dst.buffer.subarray(0, 24576), src.buffer.subarray(0, 24576))
  t.is(cq.pollInto(out, 10), 0)
  t.is(cq.pollInto(new Float64Array(5)), 0, 'no room for one record')
  a.close()
  b.close()
  cq.close()
  t.throws(() => cq.pollInto(out), { code: 'ERR_ZCIO_CLOSED' })
  src.close()
  dst.close()
  pd.close()
  ctx.close()
})

const lib = createRequire(import.meta.url)(join(root, 'lib', 'rdma.js'))

test('RDMA objects that only claim to be one (Object.create) throw ERR_INVALID_ARG_TYPE from every method and getter', async (t) => {
  const classes = ['Context', 'ProtectionDomain', 'MemoryRegion', 'CompletionQueue', 'PreparedQueuePair', 'QueuePair'].map((n) => lib[n])
  classes.push(zcio.ZeroCopyBufferManager)
  let checked = 0
  for (const C of classes) {
    const forged = Object.create(C.prototype)
    for (const [name, d] of Object.entries(Object.getOwnPropertyDescriptors(C.prototype))) {
      if (name === 'constructor') continue
      const call = d.get ? () => d.get!.call(forged) : () => d.value.call(forged)
      let err: unknown
      try {
        const r = call()
        if (r instanceof Promise) await r.then(() => undefined, (e) => (err = e))
      } catch (e) {
        err = e
      }
      const e = err as NodeJS.ErrnoException | undefined
      t.is(e?.code, 'ERR_INVALID_ARG_TYPE', `${C.name}.${name}: ${e?.message ?? 'no error'}`)
      t.regex(e?.message ?? '', /^The "this" argument must be /, `${C.name}.${name}`)
      checked++
    }
  }
  t.true(checked > 30, `${checked} methods and getters`)
  const forgedPd = Object.create(lib.ProtectionDomain.prototype)
  const e = t.throws(() => new zcio.ZeroCopyBufferManager({ dataSize: 64, headerSize: 8, headerCount: 1 }, forgedPd)) as NodeJS.ErrnoException
  t.is(e.code, 'ERR_INVALID_ARG_TYPE')
  t.regex(e.message, /^The "domain" argument must be a ProtectionDomain made by zcio\. Received an instance of ProtectionDomain$/)
  // The layer's constructors take only the native objects they wrap.
  t.throws(() => new lib.QueuePair({}), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => new lib.MemoryRegion({ buffer: () => new Uint8Array(1) }), { code: 'ERR_INVALID_ARG_TYPE' })
})

rdmaTest('forged regions in scatter lists, batches and manager options, and forged completions, get ERR_INVALID_ARG_TYPE', (t) => {
  const s = setup()
  const forged = Object.create(lib.MemoryRegion.prototype)
  const e = t.throws(() => s.a.postSendSges([{ mr: forged, start: 0, end: 1 }], 1)) as NodeJS.ErrnoException
  t.is(e.code, 'ERR_INVALID_ARG_TYPE')
  t.is(e.message, 'The "sges[0].mr" property must be a MemoryRegion made by zcio. Received an instance of MemoryRegion')
  t.throws(() => s.b.postReceive(forged, 0, 1, 1), { code: 'ERR_INVALID_ARG_TYPE', message: /^The "mr" argument must be a MemoryRegion made by zcio/ })
  t.throws(() => s.a.postSend({} as never, 0, 1, 1), { code: 'ERR_INVALID_ARG_TYPE', message: /^The "mr" argument must be an instance of MemoryRegion/ })
  t.throws(() => s.a.postWrite([{ mr: forged, start: 0, end: 1 }], s.mrB.addr, s.mrB.rkey, 1), { code: 'ERR_INVALID_ARG_TYPE' })
  t.throws(() => s.a.postSendBatch(forged, [0, 1, 1]), { code: 'ERR_INVALID_ARG_TYPE', message: /^The "mr" argument must be a MemoryRegion made by zcio/ })
  t.throws(() => s.pd.createQp(Object.create(lib.CompletionQueue.prototype), s.cqA), { code: 'ERR_INVALID_ARG_TYPE', message: /^The "sendCq" argument/ })
  t.throws(() => new zcio.ZeroCopyBufferManager({ data: forged, headerSize: 8, headerCount: 1 }, s.pd), { code: 'ERR_INVALID_ARG_TYPE', message: /^The "options.data" property must be a MemoryRegion made by zcio/ })
  const m = new zcio.ZeroCopyBufferManager({ dataSize: 4096, headerSize: 8, headerCount: 1 }, s.pd)
  for (const wc of [null, undefined, 7, 'wc']) {
    t.throws(() => m.handle(wc as never), { code: 'ERR_INVALID_ARG_TYPE', message: /^The "wc" argument must be of type object/ })
  }
  t.throws(() => m.handle({ wrId: 2 ** 52, status: 0 } as never), { code: 'ERR_INVALID_ARG_TYPE', message: /^The "wc.qpNum" property must be of type number/ })
  t.throws(() => m.handle({ status: 0, qpNum: s.a.qpn } as never), { code: 'ERR_INVALID_ARG_TYPE', message: /^The "wc.wrId" property/ })
  t.is(t.throws(() => m.send(Object.create(lib.QueuePair.prototype), Buffer.from('h'), 0, 1, 1))?.message, 'The "connection" argument must be a QueuePair made by zcio. Received an instance of QueuePair')
  t.deepEqual(m.getPendingSends(), [], 'a refused send holds no header')
  m.close()
})

rdmaTest('ZeroCopyBufferManagers sharing a queue pair and its completion queue take only their own completions', async (t) => {
  const s = setup()
  const mA = new zcio.ZeroCopyBufferManager({ dataSize: 4096, headerSize: 16, headerCount: 1 }, s.pd)
  const mB = new zcio.ZeroCopyBufferManager({ dataSize: 4096, headerSize: 16, headerCount: 1 }, s.pd)
  mA.data.set(Buffer.from('-payload-of-A'))
  mB.data.set(Buffer.from('-payload-of-B'))
  // B's send completes (a receive is there for it).
  s.b.postReceive(s.mrB, 0, 256, 1)
  mB.send(s.a, Buffer.from('BBBB-only'), 0, 13, 200)
  t.like((await s.cqB.wait())[0], { wrId: 1, status: 0 })
  const [wcB] = await s.cqA.wait()
  t.is(wcB.qpNum, s.a.qpn, 'completions carry their queue pair')
  // A's send can't complete yet: no receive at the peer.
  mA.send(s.a, Buffer.from('AAAA-first'), 0, 13, 100)
  t.is(mA.handle(wcB), undefined, "another manager's completion is not A's")
  t.deepEqual(mA.getPendingSends(), [100])
  t.throws(() => mA.send(s.a, Buffer.from('CCCC-second'), 0, 13, 101), { code: 'ERR_ZCIO_NO_BUFFERS' }, "A's only header is still the device's")
  t.is(mB.handle(wcB), 200)
  t.is(mB.handle(wcB), undefined, 'a completion is taken once')
  // Forged completions: the reserved range, the right wrId on another queue pair.
  t.is(mA.handle({ wrId: 2 ** 52, status: 0, qpNum: s.a.qpn } as never), undefined)
  t.is(mB.handle({ ...wcB, qpNum: s.b.qpn }), undefined)
  // The peer gets A's header intact.
  s.b.postReceive(s.mrB, 256, 512, 2)
  const [rx] = await s.cqB.wait()
  t.is(rx.byteLen, 10 + 13)
  t.is(Buffer.from(s.mrB.buffer.subarray(256, 256 + 23)).toString(), 'AAAA-first-payload-of-A')
  t.is(Buffer.from(s.mrB.buffer.subarray(0, 22)).toString(), 'BBBB-only-payload-of-B')
  const [wcA] = await s.cqA.wait()
  t.is(mB.handle(wcA), undefined)
  t.is(mA.handle(wcA), 100)
  // Callers' wrIds can't reach the managers' range.
  t.throws(() => s.a.postSend(s.mrA, 0, 1, 2 ** 52), { code: 'ERR_OUT_OF_RANGE', message: /reserved for ZeroCopyBufferManager/ })
  t.throws(() => s.b.postReceive(s.mrB, 0, 1, 2 ** 53 - 1), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => s.a.postSendBatch(s.mrA, [0, 1, 1, 0, 1, 2 ** 52 + 5]), { code: 'ERR_OUT_OF_RANGE', message: /"batch\[5\]"/ })
  t.is(s.a.outstanding, 0)
  mA.close()
  mB.close()
})

rdmaTest('posts that could overflow a completion queue throw ERR_ZCIO_CQ_FULL; nothing is lost, everything closes', async (t) => {
  const ctx = rdma.open(process.env.ZCIO_RDMA_DEVICE)
  const pd = ctx.allocPd()
  // Both queue pairs' sends complete on a 1-entry queue, receives on another.
  const small = ctx.createCq(1)
  const big = ctx.createCq(256)
  const pa = pd.createQp(small, big)
  const pb = pd.createQp(small, big)
  const a = pa.handshake(pb.endpoint())
  const b = pb.handshake(pa.endpoint())
  const mr = pd.allocate(65536)
  const cap = small.capacity
  t.true(cap >= 1 && cap < 64, `capacity ${cap}`)
  const codeOf = (f: () => void) => {
    try {
      f()
      return null
    } catch (e) {
      return (e as NodeJS.ErrnoException).code
    }
  }
  for (let i = 0; i < 64; i++) b.postReceive(mr, i * 64, i * 64 + 64, 1000 + i)
  // 64 sends, posted as fast as the small queue allows.
  let sends = 0
  let refused = 0
  const sent: number[] = []
  const deadline = Date.now() + 60_000
  while (sent.length < 64 && Date.now() < deadline) {
    if (sends < 64) {
      const c = codeOf(() => a.postSend(mr, 8192, 8192 + 64, sends))
      if (c === null) sends++
      else if (c === 'ERR_ZCIO_CQ_FULL') refused++
      else t.fail(`postSend threw ${c}`)
    }
    if (small.pending > cap) t.fail(`${small.pending} pending on ${cap} entries`)
    for (const wc of small.poll(16)) {
      if (wc.status !== 0) t.fail(`send ${wc.wrId}: status ${wc.status}`)
      sent.push(wc.wrId)
    }
    if (small.pending === cap) await new Promise((r) => setImmediate(r))
  }
  t.deepEqual(sorted(sent), Array.from({ length: 64 }, (_, i) => i), 'every send came back')
  t.log(`${refused} posts refused on ${cap} entries`)
  const got: number[] = []
  while (got.length < 64) for (const wc of await big.wait(64)) got.push(wc.wrId)
  t.deepEqual(sorted(got), Array.from({ length: 64 }, (_, i) => 1000 + i))
  t.is(small.pending + big.pending, 0)
  // No receive left at either end: sends stay outstanding. A batch posts
  // what fits; then both queue pairs' sends are refused, receives are not.
  t.is(a.postSendBatch(mr, Array.from({ length: 3 * (cap + 4) }, (_, i) => (i % 3 === 1 ? 64 : 0))), cap)
  t.is(small.pending, cap)
  const full = t.throws(() => b.postSend(mr, 0, 1, 1)) as NodeJS.ErrnoException
  t.is(full.code, 'ERR_ZCIO_CQ_FULL')
  t.regex(full.message, /completion queue is full/)
  t.throws(() => a.postSendBatch(mr, [0, 1, 1]), { code: 'ERR_ZCIO_CQ_FULL' })
  t.throws(() => a.postWrite([{ mr, start: 0, end: 1 }], mr.addr, mr.rkey, 1), { code: 'ERR_ZCIO_CQ_FULL' })
  t.is(mr.inUse, cap)
  b.postReceive(mr, 0, 64, 1)
  t.is(big.pending, 1)
  a.close()
  b.close()
  while (a.outstanding > 0) await small.wait()
  while (b.outstanding > 0) await big.wait()
  small.close()
  big.close()
  mr.close()
  pd.close()
  ctx.close()
})

rdmaTest("the README's RDMA example runs as printed", (t) => {
  const app = fs.mkdtempSync(join(os.tmpdir(), 'zcio-readme-rdma-'))
  try {
    fs.mkdirSync(join(app, 'node_modules'))
    fs.symlinkSync(root, join(app, 'node_modules', 'zcio'))
    fs.writeFileSync(join(app, 'rdma.js'), readmeBlock('## RDMA (JavaScript)', 'js'))
    const r = spawnSync(process.execPath, ['rdma.js'], { cwd: app, encoding: 'utf8', timeout: 60_000 })
    t.is(r.status, 0, r.stderr)
    t.regex(r.stdout, /^hello over RDMA \[ .+ \]\n$/)
  } finally {
    fs.rmSync(app, { recursive: true, force: true })
  }
})
