// Buffer groups under many streams: re-arming in order and at a cost per
// release that does not grow with the receives waiting, per-stream limits so
// a consumer that stops reading cannot starve the others, one receive order
// per stream, and chunks given back when they are collected unreleased.

import { needsSerial, zcio } from './support.js'

const { Ring, BufferGroup, TcpStream, TcpListener } = zcio
type Ring = InstanceType<typeof Ring>
type Stream = InstanceType<typeof TcpStream>
type Group = InstanceType<typeof BufferGroup>

/** Visible skip where the kernel lacks provided-buffer rings (serial: the counts and the warning are per process). */
const netTest = needsSerial('bufRing')
const turn = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms))

async function pairs(ring: Ring, n: number): Promise<{ client: Stream; server: Stream }[]> {
  const l = TcpListener.bind(ring, { port: 0 })
  const out: { client: Stream; server: Stream }[] = []
  for (let i = 0; i < n; i++) {
    const accepted = l.accept()
    const client = await TcpStream.connect(ring, { port: l.address.port! })
    out.push({ client, server: (await accepted)! })
  }
  l.close()
  return out
}

async function closeAll(ps: { client: Stream; server: Stream }[]): Promise<void> {
  await Promise.all(ps.flatMap((p) => [p.client.close(), p.server.close()]))
}

/** Waits (up to `ms`) for `cond`. */
async function until(cond: () => boolean, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms
  while (!cond() && Date.now() < end) await turn(2)
  return cond()
}

/**
 * `n` streams with data waiting share a 1-buffer group through
 * recvCallback; chunks are released one at a time. Returns the re-arms and
 * ENOBUFS seen over the releases.
 */
async function parkedReleases(n: number, releases: number): Promise<{ rearms: number; enobufs: number; got: number; bytes: number }> {
  const ring = new Ring()
  const ps = await pairs(ring, n)
  const group = new BufferGroup(ring, { groupId: 1, bufferSize: 64, bufferCount: 1 })
  const held: number[] = []
  let bytes = 0
  for (const p of ps) {
    group.recvCallback(p.server, {
      onChunk: (id, _o, length) => {
        bytes += length
        held.push(id)
      },
    })
  }
  for (const p of ps) await p.client.send(new Uint8Array(8))
  await until(() => held.length === 1)
  await turn(20) // every other receive has met the empty ring and waits
  const before = group.stats()
  let got = 1
  for (let k = 0; k < releases; k++) {
    group.put(held.shift()!)
    if (!(await until(() => held.length === 1, 1000))) break
    got++
  }
  const after = group.stats()
  while (held.length > 0) group.put(held.shift()!)
  await closeAll(ps)
  group.close()
  ring.close()
  return { rearms: after.rearmCount - before.rearmCount, enobufs: after.enobufsCount - before.enobufsCount, got, bytes }
}

netTest('a release into a dry group re-arms as many receives as buffers came back, in order', async (t) => {
  const K = 40
  const small = await parkedReleases(50, K)
  const big = await parkedReleases(400, K)
  t.is(small.got, K + 1)
  t.is(big.got, K + 1)
  // Each release gives its buffer to one waiting receive (which, after its
  // chunk, meets the empty ring once more): a few re-arms and ENOBUFS per
  // release, however many receives wait. Re-arming every waiting receive
  // costs n per release (400 × 40 here).
  for (const [name, r] of [['50 streams', small], ['400 streams', big]] as const) {
    t.true(r.rearms <= 3 * K, `${name}: ${r.rearms} re-arms over ${K} releases`)
    t.true(r.enobufs <= 3 * K, `${name}: ${r.enobufs} ENOBUFS over ${K} releases`)
  }
  // Scaling by counts: 8 times the waiting receives, about the same work.
  t.true(big.rearms + big.enobufs <= 2 * (small.rearms + small.enobufs) + 10, `${JSON.stringify(small)} vs ${JSON.stringify(big)}`)
})

netTest('every receive waiting on a 1-buffer group gets its data and end of stream', async (t) => {
  const ring = new Ring()
  const n = 300
  const ps = await pairs(ring, n)
  const group = new BufferGroup(ring, { groupId: 1, bufferSize: 64, bufferCount: 1 })
  let bytes = 0
  let ends = 0
  const errors: string[] = []
  for (const p of ps) {
    group.recvCallback(p.server, {
      onChunk: (id, _o, length) => {
        bytes += length
        setImmediate(() => group.put(id)) // held across a turn: the others find the ring empty
      },
      onEnd: (e) => {
        if (e) errors.push(String((e as NodeJS.ErrnoException).code))
        ends++
      },
    })
  }
  for (const p of ps) {
    await p.client.send(new Uint8Array(10))
    p.client.shutdown('write')
  }
  t.true(await until(() => ends === n, 10000), `${ends} of ${n} ended`)
  t.is(bytes, 10 * n)
  t.deepEqual(errors, [])
  const s = group.stats()
  t.true(s.rearmCount <= 6 * n, `${s.rearmCount} re-arms for ${n} streams`)
  await closeAll(ps)
  ring.close()
})

/** Sends `total` bytes from `s`, ignoring the end of the connection. */
async function flood(s: Stream, total: number, byte: number): Promise<void> {
  const block = new Uint8Array(16384).fill(byte)
  for (let sent = 0; sent < total; sent += block.length) {
    try {
      await s.send(block)
    } catch {
      return
    }
  }
}

for (const form of ['toNodeStream', 'recvMultishot', 'recvCallback'] as const) {
  netTest(`a ${form} consumer that stops reading does not starve another stream of its group`, async (t) => {
    const ring = new Ring()
    const [slow, fast] = await pairs(ring, 2)
    const group = new BufferGroup(ring, { groupId: 2, bufferSize: 4096, bufferCount: 16 })
    const slowTotal = 1 << 20
    void flood(slow.client, slowTotal, 1)
    // The slow consumer takes a little, then stops reading.
    let slowGot = 0
    let resume: () => void = () => {}
    if (form === 'toNodeStream') {
      const d = slow.server.toNodeStream(group)
      d.on('data', (b: Buffer) => {
        slowGot += b.length
        d.pause()
      })
      resume = () => {
        d.removeAllListeners('data')
        d.on('data', (b: Buffer) => (slowGot += b.length))
        d.resume()
      }
    } else if (form === 'recvMultishot') {
      const it = group.recvMultishot(slow.server)
      const first = await it.next()
      slowGot += first.value!.data.length
      first.value!.release()
      resume = () => {
        void (async () => {
          for await (const c of it) {
            slowGot += c.data.length
            c.release()
          }
        })().catch(() => {}) // ECANCELED once the streams close
      }
    } else {
      const heldIds: number[] = []
      let holding = true
      group.recvCallback(slow.server, {
        onChunk: (id, _o, length) => {
          slowGot += length
          if (holding) heldIds.push(id)
          else group.put(id)
        },
      })
      resume = () => {
        holding = false
        for (const id of heldIds.splice(0)) group.put(id)
      }
    }
    await turn(100)
    const slowHeld = group.stats().heldCount
    // The other stream must get all its bytes meanwhile.
    const fastTotal = 256 * 1024
    void flood(fast.client, fastTotal, 2)
    let fastGot = 0
    const fastIt = group.recvMultishot(fast.server)
    const reading = (async () => {
      for await (const c of fastIt) {
        fastGot += c.data.length
        c.release()
        if (fastGot >= fastTotal) break
      }
    })()
    const done = await until(() => fastGot >= fastTotal, 3000)
    t.true(done, `the other stream got ${fastGot} of ${fastTotal} bytes while the slow one held ${slowHeld} of 16 buffers`)
    // toNodeStream holds none; the others their limit (16 / 2 = 8).
    t.true(slowHeld <= 8, `the stopped consumer holds ${slowHeld} buffers`)
    await reading
    // Reading again resumes the slow stream: everything arrives.
    resume()
    t.true(await until(() => slowGot >= slowTotal, 5000), `slow stream got ${slowGot} of ${slowTotal}`)
    await closeAll([slow, fast])
    ring.close()
  })
}

netTest('maxHeldChunks bounds the chunks a receive holds; releasing resumes it', async (t) => {
  const ring = new Ring()
  const [p] = await pairs(ring, 1)
  const group = new BufferGroup(ring, { groupId: 3, bufferSize: 1024, bufferCount: 64 })
  const it = group.recvMultishot(p.server, { maxHeldChunks: 4 })
  const total = 256 * 1024
  void flood(p.client, total, 3)
  await turn(100)
  // Nothing taken: the iterator's queue holds 4 chunks, and no more however
  // long the reader waits. Without the limit the receive takes all 64
  // buffers.
  t.is(group.stats().chunkCount, 4)
  await turn(200)
  t.is(group.stats().chunkCount, 4)
  let got = 0
  for await (const c of it) {
    got += c.data.length
    c.release()
    if (got >= total) break
  }
  t.is(got, total)
  t.throws(() => group.recvMultishot(p.server, { maxHeldChunks: 0 }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => group.recvCallback(p.server, { onChunk: () => {} }, { maxHeldChunks: '2' as unknown as number }), { code: 'ERR_INVALID_ARG_TYPE' })
  await closeAll([p])
  ring.close()
})

netTest('recv() calls of one stream get the bytes in call order; mixing with a continuous receive is refused', async (t) => {
  const ring = new Ring()
  const [p] = await pairs(ring, 1)
  const group = new BufferGroup(ring, { groupId: 4, bufferSize: 64, bufferCount: 4 })
  const text = async (c: Promise<{ data: Uint8Array; release(): void } | null>): Promise<string> => {
    const chunk = await c
    if (chunk === null) return 'end'
    const s = Buffer.from(chunk.data).toString()
    chunk.release()
    return s
  }
  for (let round = 0; round < 5; round++) {
    const first = text(group.recv(p.server))
    const second = text(group.recv(p.server))
    const third = text(group.recv(p.server))
    await turn(5)
    await p.client.send(Buffer.from(`a${round}`))
    await turn(5)
    await p.client.send(Buffer.from(`b${round}`))
    await turn(5)
    await p.client.send(Buffer.from(`c${round}`))
    t.deepEqual(await Promise.all([first, second, third]), [`a${round}`, `b${round}`, `c${round}`])
  }
  // A one-shot receive pending: a continuous one would race it.
  const pending = group.recv(p.server)
  t.throws(() => group.recvMultishot(p.server), { code: 'ERR_ZCIO_RECV_PENDING' })
  t.throws(() => group.recvCallback(p.server, { onChunk: () => {} }), { code: 'ERR_ZCIO_RECV_PENDING' })
  await p.client.send(Buffer.from('x'))
  t.is(await text(pending), 'x')
  // A continuous receive: recv() rejects, a second continuous one throws.
  const it = group.recvMultishot(p.server)
  await t.throwsAsync(group.recv(p.server), { code: 'ERR_ZCIO_RECV_PENDING' })
  t.throws(() => group.recvCallback(p.server, { onChunk: () => {} }), { code: 'ERR_ZCIO_RECV_PENDING' })
  await it.return!()
  await turn(20)
  // Once it ended, recv() works again.
  const again = text(group.recv(p.server))
  await p.client.send(Buffer.from('y'))
  t.is(await again, 'y')
  await closeAll([p])
  ring.close()
})

async function collect(): Promise<void> {
  for (let i = 0; i < 4; i++) {
    globalThis.gc!()
    await turn(5)
  }
}

netTest('a chunk collected without release() is given back, counted and warned about once', async (t) => {
  const warnings: Error[] = []
  const onWarning = (w: Error): void => {
    if ((w as NodeJS.ErrnoException).code === 'ZCIO_CHUNK_LEAKED') warnings.push(w)
  }
  process.on('warning', onWarning)
  const ring = new Ring()
  const [p] = await pairs(ring, 1)
  const group = new BufferGroup(ring, { groupId: 5, bufferSize: 64, bufferCount: 1 })
  for (let i = 0; i < 3; i++) {
    await p.client.send(Buffer.from(`leak${i}`))
    await (async () => {
      const c = await group.recv(p.server)
      t.is(Buffer.from(c!.data).toString(), `leak${i}`) // dropped without release()
    })()
    await collect()
    t.true(await until(() => group.leakedCount === i + 1, 2000), `leakedCount ${group.leakedCount} after ${i + 1} dropped`)
    t.is(group.stats().availableCount, 1)
    t.is(group.stats().chunkCount, 0)
  }
  t.is(group.stats().leakedCount, 3)
  await turn(10)
  t.is(warnings.length, 1)
  process.off('warning', onWarning)
  // A multishot consumer that drops its chunks keeps receiving.
  let got = 0
  const it = group.recvMultishot(p.server)
  const collector = setInterval(() => globalThis.gc!(), 5)
  // Each chunk is looked at and dropped, never released (in a frame of its
  // own: a suspended loop would keep the last one alive).
  const one = (): Promise<number> => it.next().then((n) => (n.done ? -1 : n.value.data.length))
  const reading = (async () => {
    for (;;) {
      const length = await one()
      if (length < 0) return
      got += length
    }
  })()
  for (let i = 0; i < 5; i++) {
    await p.client.send(new Uint8Array(16))
    await until(() => got >= 16 * (i + 1), 2000)
  }
  t.is(got, 80)
  p.client.shutdown('write')
  await reading
  clearInterval(collector)
  t.true(group.leakedCount >= 3 + 4, `leakedCount ${group.leakedCount}`)
  await closeAll([p])
  ring.close()
})

netTest('a chunk released before it is collected is never given back twice', async (t) => {
  const ring = new Ring()
  const [p] = await pairs(ring, 1)
  const group = new BufferGroup(ring, { groupId: 6, bufferSize: 64, bufferCount: 1 })
  const before = group.leakedCount
  await p.client.send(Buffer.from('one'))
  await (async () => {
    const c = (await group.recv(p.server))!
    c.release()
  })()
  await (async () => {
    await p.client.send(Buffer.from('two'))
    const c = (await group.recv(p.server))!
    group.put(c.bufferId) // given back by id: the chunk object is released too
    t.throws(() => c.release(), { code: 'ERR_ZCIO_NOT_ACQUIRED' })
  })()
  // The same buffer now holds a third chunk, kept alive here.
  await p.client.send(Buffer.from('three'))
  const kept = (await group.recv(p.server))!
  await collect()
  await turn(20)
  t.is(group.leakedCount, before)
  t.is(group.stats().chunkCount, 1)
  t.is(Buffer.from(kept.data).toString(), 'three')
  kept.release()
  t.is(group.stats().chunkCount, 0)
  await closeAll([p])
  ring.close()
})
