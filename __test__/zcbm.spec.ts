import { codeOf, needs, zcio } from './support.js'

const { Ring, BufferGroup, TcpListener, TcpStream, ZeroCopyBufferManager } = zcio
const zcTest = needs('sendZc', 'bufRing')

zcTest('io_uring domain: header pool, keys, minimum available, pending sends, header + data as one message', async (t) => {
  const ring = new Ring()
  const done: { key: number; error?: Error }[] = []
  const m = new ZeroCopyBufferManager({ dataSize: 1 << 20, headerSize: 64, headerCount: 4 }, ring, (d) => done.push(d))
  t.is(m.getMr().kind, 'io_uring')
  t.is(m.getHeaderMr().kind, 'io_uring')
  // Header bookkeeping alone.
  const h = m.getHeader(Buffer.from('hdr'), 42)
  t.deepEqual(Buffer.from(h.buffer), Buffer.from('hdr'))
  t.deepEqual(m.getPendingSends(), [42])
  t.is(m.getNumAvailableBuffers(), 3)
  t.is(m.returnHeader(h.bufnum), 42)
  t.is(m.getNumAvailableBuffers(), 3, 'the minimum since the last call')
  t.is(m.getNumAvailableBuffers(), 4)
  const all = [0, 1, 2, 3].map((k) => m.getHeader(Buffer.from('x'), k))
  t.is(codeOf(() => m.getHeader(Buffer.from('x'), 9)), 'ERR_ZCIO_NO_BUFFERS')
  for (const b of all) m.returnHeader(b.bufnum)
  t.is(codeOf(() => m.returnHeader(0)), 'ERR_ZCIO_NOT_ACQUIRED')
  t.is(codeOf(() => m.getHeader(Buffer.alloc(65), 1)), 'ERR_INVALID_ARG_VALUE')
  // Not a completion: Node's type error; an RDMA completion is never an io_uring manager's.
  t.is(codeOf(() => m.handle(null as never)), 'ERR_INVALID_ARG_TYPE')
  t.is(codeOf(() => m.handle({ wrId: 2 ** 52 } as never)), 'ERR_INVALID_ARG_TYPE')
  t.is(m.handle({ wrId: 2 ** 52, status: 0, opcode: 'send', byteLen: 0, qpNum: 1 }), undefined)

  // Real sends over a loopback connection.
  const l = TcpListener.bind(ring, { port: 0 })
  const acc = l.accept()
  const client = await TcpStream.connect(ring, { port: l.address.port! })
  const server = (await acc)!
  const group = new BufferGroup(ring, { groupId: 1, bufferSize: 65536, bufferCount: 16 })
  for (let i = 0; i < 4096; i++) m.data[i] = i & 0xff
  m.send(client, Buffer.from('HEAD1'), 100, 1000, 7)
  m.send(client, Buffer.from('HEAD2'), 2000, 10, 8)
  t.deepEqual(m.getPendingSends().sort(), [7, 8])
  t.is(codeOf(() => m.close()), 'ERR_ZCIO_SENDS_PENDING')
  const expect = Buffer.concat([Buffer.from('HEAD1'), Buffer.from(m.data.subarray(100, 1100)), Buffer.from('HEAD2'), Buffer.from(m.data.subarray(2000, 2010))])
  const got: Buffer[] = []
  let n = 0
  while (n < expect.length) {
    const c = (await group.recv(server))!
    got.push(Buffer.from(c.data))
    n += c.data.length
    c.release()
  }
  t.true(Buffer.concat(got).equals(expect))
  while (done.length < 2) await new Promise((r) => setTimeout(r, 5))
  t.deepEqual(done.map((d) => d.key).sort(), [7, 8])
  t.true(done.every((d) => d.error === undefined))
  t.deepEqual(m.getPendingSends(), [])

  // Closing the connection reports every pending key, with its error.
  await server.close()
  for (let i = 0; i < 4; i++) {
    try {
      m.send(client, Buffer.from('late'), 0, 1 << 20, 100 + i)
    } catch (e) {
      t.is((e as NodeJS.ErrnoException).code, 'ERR_ZCIO_NO_BUFFERS')
    }
  }
  const closing = client.close()
  await closing
  while (m.getPendingSends().length > 0) await new Promise((r) => setTimeout(r, 5))
  const late = done.filter((d) => d.key >= 100)
  t.true(late.length > 0)
  t.is(m.getNumAvailableBuffers() >= 0, true)
  t.is(codeOf(() => m.send({} as never, Buffer.from('x'), 0, 1, 1)), 'ERR_INVALID_ARG_TYPE')
  t.deepEqual(m.getPendingSends(), [])
  m.close()
  m.close()
  t.is(codeOf(() => m.getHeader(Buffer.from('x'), 1)), 'ERR_ZCIO_CLOSED')
  t.is(codeOf(() => m.send(client, Buffer.from('x'), 0, 1, 1)), 'ERR_ZCIO_CLOSED')
  t.deepEqual(await m.completed().next(), { value: undefined, done: true })
  l.close()
  ring.close()
})
