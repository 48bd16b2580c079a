// Commands: SQPOLL network rings (where `probe().sqpoll` says the kernel
// allows them), operations queued on one ring from the completions of
// another (a relay across two rings, with connects and accepts on the other
// ring), and bursts of sends on one stream that go to the kernel as one chain
// of linked operations (the peer must get the bytes in order).
//
// Each cross-ring or burst command makes its own listener, streams, groups and
// pool on the model's network rings and closes them before it ends, so the
// model of those rings is untouched; what it checks is its own: every byte
// arrives in order, and everything finishes while nothing but the rings'
// own work can wake the event loop (no timer, no immediate, apart from the
// watchdog that reports a hang).

import fc from 'fast-check'
import { Cmd } from './cmd.js'
import { addNetRing } from './net-life.js'
import { SETTLE_TIMEOUT_MS, cover, fail, zcio } from './model.js'
import { type Group, type NetRingM, type Stream, openNetRings, payload } from './net-model.js'
import type { World } from './world.js'

const probed = zcio.probe()
type Pool = InstanceType<typeof zcio.RegisteredBufferPool>

/** Group ids of this file's own groups (the model's are 0-5 and 65533-65535). */
let nextGroupId = 0
const privateGroupId = (): number => 1000 + (nextGroupId++ % 30000)

/**
 * `p`, or a hang failure once `what` took `SETTLE_TIMEOUT_MS`. The watchdog's
 * timer is the only one this file sets, and it is cleared as soon as `p`
 * settles: an operation that only a timer would submit shows up as a hang.
 */
async function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const watchdog = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('watchdog')), SETTLE_TIMEOUT_MS)
  })
  try {
    return await Promise.race([p, watchdog])
  } catch (e) {
    if ((e as Error).message === 'watchdog') {
      fail(`hang: ${what} did not finish in ${SETTLE_TIMEOUT_MS} ms (nothing but the rings could wake the loop)`)
    }
    throw e
  } finally {
    clearTimeout(timer)
  }
}

class NewSqpollNetRing extends Cmd {
  constructor(readonly entries: number, readonly poolSize: number) {
    super()
  }
  act(w: World) {
    // A kernel submission thread is io_uring's own: epoll rings refuse it.
    if (!probed.sqpoll || probed.backend === 'epoll') {
      w.log(`  SKIPPED: ${probed.backend === 'epoll' ? 'rings run on epoll' : 'probe().sqpoll is false'}: no SQPOLL ring here`)
      cover('SKIPPED: SQPOLL network ring (probe().sqpoll is false)')
      return
    }
    const r = addNetRing(w, this.entries, this.poolSize, 0, true)
    if (!r) w.log('  (network ring limit reached: skipped)')
    else cover('SQPOLL network ring')
  }
  toString() {
    return `SQPOLL network ring (entries ${this.entries}, pool buffers of ${this.poolSize})`
  }
}

/** Two open network rings, chosen by `n` (made when there are fewer). */
function twoRings(w: World, n: number): [NetRingM, NetRingM] | null {
  while (openNetRings(w).length < 2) {
    if (!addNetRing(w, 64, 4096)) return null
  }
  const open = openNetRings(w)
  const a = open[n % open.length]
  const rest = open.filter((r) => r !== a)
  return [a, rest[(n >> 3) % rest.length]]
}

function describe(r: NetRingM): string {
  return `${r.name}${r.real!.features.sqpoll ? ' (sqpoll)' : ''}`
}

/** A connected pair: `a` accepted on `listenOn`, `b` connected from `connectOn`. */
async function crossPair(listenOn: NetRingM, connectOn: NetRingM): Promise<{ a: Stream; b: Stream }> {
  const l = zcio.TcpListener.bind(listenOn.real!, { port: 0 })
  try {
    const accepted = l.accept()
    const b = await zcio.TcpStream.connect(connectOn.real!, { port: l.address.port! })
    const a = await accepted
    if (a === null) fail(`accept on ${listenOn.name} gave null before the listener closed`)
    return { a, b }
  } finally {
    l.close()
  }
}

/** Receives exactly `want` on `s` through `g` (single-shot receives), checking the bytes. */
async function recvExactly(g: Group, s: Stream, want: Uint8Array, what: string): Promise<void> {
  let got = 0
  while (got < want.length) {
    const c = await g.recv(s)
    if (c === null) fail(`${what}: end of stream after ${got} of ${want.length} bytes`)
    const d = c.data
    if (got + d.length > want.length) fail(`${what}: ${got + d.length} bytes arrived, ${want.length} were sent`)
    for (let i = 0; i < d.length; i++) {
      if (d[i] !== want[got + i]) fail(`${what}: byte ${got + i} is ${d[i]}, expected ${want[got + i]}`)
    }
    got += d.length
    c.release()
  }
}

async function closeAll(streams: Stream[], groups: Group[], pools: Pool[] = []): Promise<void> {
  await Promise.all(streams.map((s) => s.close()))
  for (const g of groups) g.close()
  for (const p of pools) p.close()
}

/**
 * A relay across two rings: each hop sends on one ring and receives on the
 * other, the next step always queued from the promise reaction of the last
 * completion (so from inside the driver of one ring, for the other). Every
 * `connectEvery` hops, a pair is also connected and accepted on the ring
 * the last completion did not come from.
 */
class CrossRelay extends Cmd {
  constructor(readonly rings: number, readonly hops: number, readonly len: number, readonly connectEvery: number, readonly seed: number) {
    super()
  }
  async act(w: World) {
    const two = twoRings(w, this.rings)
    if (!two) {
      w.log('  (fewer than two network rings can be open: skipped)')
      return
    }
    const [ra, rb] = two
    w.log(`  relay between ${describe(ra)} and ${describe(rb)}`)
    cover(`cross-ring relay${ra.real!.features.sqpoll || rb.real!.features.sqpoll ? ' with an SQPOLL ring' : ''}`)
    const { a, b } = await within(crossPair(ra, rb), `connecting ${rb.name} to a listener on ${ra.name}`)
    const ga = new zcio.BufferGroup(ra.real!, { groupId: privateGroupId(), bufferSize: 4096, bufferCount: 4 })
    const gb = new zcio.BufferGroup(rb.real!, { groupId: privateGroupId(), bufferSize: 4096, bufferCount: 4 })
    const extra: Stream[] = []
    try {
      const run = async (): Promise<void> => {
        for (let i = 0; i < this.hops; i++) {
          // Even hops: b (ring B) sends, a (ring A) receives; odd: the other way.
          const [from, to, g, fromRing, toRing] = i % 2 === 0 ? [b, a, ga, rb, ra] : [a, b, gb, ra, rb]
          const m = payload(this.len, this.seed, i)
          const sent = await from.send(m)
          if (sent !== m.length) fail(`relay hop ${i}: ${fromRing.name} sent ${sent} of ${m.length} bytes`)
          // Reacting to a completion of `fromRing`: the receive goes to `toRing`.
          await recvExactly(g, to, m, `relay hop ${i} (${fromRing.name} -> ${toRing.name})`)
          if (this.connectEvery > 0 && i % this.connectEvery === 0) {
            // Reacting to a completion of `toRing`: connect and accept on `fromRing`.
            const p = await crossPair(fromRing, fromRing)
            extra.push(p.a, p.b)
            cover('connect and accept queued from the other ring\'s completion')
          }
        }
      }
      await within(run(), `a relay of ${this.hops} hops between ${ra.name} and ${rb.name}`)
      cover('cross-ring relay finished', this.hops)
    } finally {
      await within(closeAll([a, b, ...extra], [ga, gb]), 'closing the relay\'s streams')
    }
  }
  toString() {
    return `cross-ring relay (rings #${this.rings}, ${this.hops} hops of ${this.len} bytes${this.connectEvery > 0 ? `, a connect every ${this.connectEvery}` : ''})`
  }
}

type Piece = 'u8' | 'zc' | 'pool'

/**
 * Many sends on one stream queued at once: while the first is in the kernel
 * the others wait in the stream and go as one chain of linked operations.
 * The peer (on the same ring or another) must get every byte in order.
 */
class Burst extends Cmd {
  constructor(readonly rings: number, readonly same: boolean, readonly pieces: Piece[], readonly size: number, readonly seed: number) {
    super()
  }
  async act(w: World) {
    const two = twoRings(w, this.rings)
    if (!two) {
      w.log('  (fewer than two network rings can be open: skipped)')
      return
    }
    // An SQPOLL ring sends every other time there is one: its kernel thread
    // is what would see a chain half-written.
    const sqpoll = openNetRings(w).find((r) => r.real!.features.sqpoll)
    const [rs, other] = sqpoll && this.rings % 2 === 0 ? [sqpoll, two.find((r) => r !== sqpoll) ?? two[1]] : two
    const rr = this.same ? rs : other
    w.log(`  burst of ${this.pieces.length} sends from ${describe(rs)} to ${describe(rr)}`)
    cover(`burst of linked sends${rs.real!.features.sqpoll ? ' on an SQPOLL ring' : ''}`)
    const { a: receiver, b: sender } = await within(crossPair(rr, rs), `connecting ${rs.name} to a listener on ${rr.name}`)
    const group = new zcio.BufferGroup(rr.real!, { groupId: privateGroupId(), bufferSize: 65536, bufferCount: 16 })
    const pool = new zcio.RegisteredBufferPool(rs.real!, this.size, this.pieces.length)
    try {
      const total = this.size * this.pieces.length
      const data = payload(total, this.seed, 0)
      const got = new Uint8Array(total)
      let received = 0
      const receiving = (async () => {
        for await (const c of group.recvMultishot(receiver)) {
          if (received + c.data.length > total) fail(`burst: ${received + c.data.length} bytes arrived, ${total} were sent`)
          got.set(c.data, received)
          received += c.data.length
          c.release()
          if (received === total) break
        }
      })()
      const sends: Promise<unknown>[] = []
      this.pieces.forEach((kind, k) => {
        const part = data.subarray(k * this.size, (k + 1) * this.size)
        if (kind === 'pool') {
          const { index, buffer } = pool.acquire()
          buffer.set(part)
          sends.push(sender.send({ pool, index }).finally(() => pool.release(index)))
        } else if (kind === 'zc' && (probed.sendZc || probed.backend === 'epoll')) {
          sends.push(sender.sendZc(part))
        } else {
          sends.push(sender.send(part))
        }
      })
      await within(Promise.all([...sends, receiving]), `a burst of ${this.pieces.length} sends from ${rs.name} to ${rr.name}`)
      if (received !== total) fail(`burst: ${received} of ${total} bytes arrived`)
      for (let i = 0; i < total; i++) {
        if (got[i] !== data[i]) {
          fail(`burst from ${describe(rs)}: byte ${i} (piece ${Math.floor(i / this.size)} of ${this.pieces.join(', ')}) is out of order`)
        }
      }
      cover('burst bytes compared', total)
    } finally {
      await within(closeAll([sender, receiver], [group], [pool]), 'closing the burst\'s streams')
    }
  }
  toString() {
    return `burst (rings #${this.rings}${this.same ? ', one ring' : ''}, ${this.pieces.join(' ')} of ${this.size} bytes)`
  }
}

export const netCrossCmd = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({ e: fc.constantFrom(8, 64, 256), s: fc.constantFrom(4096, 65536) }).map(({ e, s }) => new NewSqpollNetRing(e, s)),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({ r: fc.nat(1023), h: fc.integer({ min: 1, max: 24 }), l: fc.constantFrom(1, 100, 4096), c: fc.constantFrom(0, 0, 3, 8), s: fc.nat(255) })
      .map(({ r, h, l, c, s }) => new CrossRelay(r, h, l, c, s)),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({
        r: fc.nat(1023),
        same: fc.boolean(),
        p: fc.array(fc.constantFrom<Piece>('u8', 'zc', 'pool', 'pool'), { minLength: 2, maxLength: 20 }),
        size: fc.constantFrom(1000, 16384, 65536),
        s: fc.nat(255),
      })
      .map(({ r, same, p, size, s }) => new Burst(r, same, p, size, s)),
  },
)
