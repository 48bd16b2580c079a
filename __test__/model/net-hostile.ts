// Commands a careless or hostile program runs against streams: sends whose
// ArrayBuffer is transferred right after the call, adopting a descriptor
// that a stream already owns, and zero-copy sends to a peer that never
// reads, ended by close() (bounded), destroy() or by closing a ring. The
// last run on connections of their own (a Node peer that never reads), on
// the model's rings, so that they interleave with everything else there.

import fc from 'fast-check'
import * as fs from 'node:fs'
import * as net from 'node:net'
import { Cmd } from './cmd.js'
import { cover, fail, show, thrownCode, zcio } from './model.js'
import { type Stream, liveStreams, openNetRings, payload, unread, UNREAD_CAP } from './net-model.js'
import { pickStream, prepareTransferSend, settled } from './net-send.js'
import type { World } from './world.js'

/** How long a close of a stream whose peer never reads may take, in ms (its timeout plus slack). */
const CLOSE_BOUND_MS = 4000

class TransferSend extends Cmd {
  constructor(readonly stream: number, readonly len: number, readonly seed: number) {
    super()
  }
  check(w: World) {
    return liveStreams(w).length > 0
  }
  act(w: World) {
    const s = pickStream(w, this.stream)
    if (!s || (!s.closed && !s.ring.closed && unread(s) + this.len > UNREAD_CAP)) return
    const bytes = payload(this.len, this.seed, 0)
    const ab = new ArrayBuffer(this.len)
    new Uint8Array(ab).set(bytes)
    const x = prepareTransferSend(w, s, bytes)
    const p = s.real!.send(new Uint8Array(ab))
    // Gone from under the send: the bytes the peer gets must be these ones
    // (copied when the send was handed to the kernel), or the send fails
    // with ERR_ZCIO_DETACHED if it was still queued here.
    const moved = structuredClone(ab, { transfer: [ab] })
    new Uint8Array(moved).fill(0xee)
    w.track(p, x.label)
    p.then(
      (v) => {
        cover('transferred send resolved')
        settled(w, x, v, undefined)
      },
      (e) => {
        if ((e as { code?: string }).code === 'ERR_ZCIO_DETACHED') cover('transferred send detached')
        settled(w, x, undefined, e)
      },
    )
  }
  toString() {
    return `stream #${this.stream}.send(${this.len} bytes, then transfer its ArrayBuffer, seed ${this.seed})`
  }
}

class AdoptOwned extends Cmd {
  constructor(readonly stream: number) {
    super()
  }
  check(w: World) {
    return liveStreams(w).some((s) => !s.closed && !s.ring.closed)
  }
  act(w: World) {
    const open = liveStreams(w).filter((s) => !s.closed && !s.ring.closed)
    const s = open[this.stream % open.length]
    const ring = open[(this.stream >> 3) % open.length].ring
    const res = thrownCode(() => zcio.TcpStream.fromFd(ring.real!, s.real!.fd))
    w.log(`  TcpStream.fromFd(${ring.name}, ${s.name}.fd) -> ${res.threw ? res.code : 'a stream'}`)
    if (!res.threw) fail(`TcpStream.fromFd(${ring.name}, ${s.name}.fd) adopted a descriptor ${s.name} owns`)
    if (res.code !== 'ERR_ZCIO_FD_IN_USE') fail(`TcpStream.fromFd of an owned descriptor threw ${res.code}, expected ERR_ZCIO_FD_IN_USE`)
    cover('fromFd of an owned descriptor refused')
  }
  toString() {
    return `TcpStream.fromFd(ring, stream #${this.stream}.fd)`
  }
}

type Ending = 'close' | 'destroy' | 'ring'

/** A zero-copy send to a Node peer that never reads, ended one of three ways. */
class StalledPeer extends Cmd {
  constructor(readonly ring: number, readonly mb: number, readonly ending: Ending, readonly timeout: number) {
    super()
  }
  check(w: World) {
    return this.ending === 'ring' || openNetRings(w).length > 0
  }
  async act(w: World) {
    // The peer's sockets never read, so they never see the end: destroyed
    // here at the end, or each run would leave one descriptor behind.
    const peers: net.Socket[] = []
    const server = net.createServer({ pauseOnConnect: true }, (c) => peers.push(c))
    const done = (): void => {
      for (const c of peers) c.destroy()
      server.close()
    }
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as net.AddressInfo).port
    // Ending with a ring close needs a ring of its own: the model's rings close by their own commands.
    const own = this.ending === 'ring' ? new zcio.Ring() : null
    const rings = openNetRings(w)
    const ring = own ?? rings[this.ring % rings.length].real!
    const what = `stalled peer: sendZc(${this.mb} MiB) then ${this.ending === 'ring' ? 'ring.close()' : `${this.ending}(${this.ending === 'close' ? `{ timeout: ${this.timeout} }` : ''})`}`
    w.log(`  ${what}`)
    let s: Stream
    try {
      s = await zcio.TcpStream.connect(ring, { port })
    } catch (e) {
      done()
      own?.close()
      return void w.log(`  (connect failed: ${(e as { code?: string }).code})`)
    }
    const sending = s.sendZc(payload(this.mb << 20, this.mb, 0))
    let outcome = 'pending'
    sending.then(
      (r) => (outcome = `resolved ${show(r)}`),
      (e) => (outcome = `rejected ${(e as { code?: string }).code}`),
    )
    await new Promise((r) => setTimeout(r, 20))
    const fd = s.fd
    const started = Date.now()
    if (this.ending === 'ring') {
      const res = thrownCode(() => own!.close())
      if (res.threw) fail(`${what}: ring.close() threw ${res.code}`)
    } else {
      const ended = this.ending === 'close' ? s.close({ timeout: this.timeout }) : s.destroy()
      const bound = new Promise<'late'>((r) => setTimeout(() => r('late'), CLOSE_BOUND_MS).unref())
      if ((await Promise.race([ended, bound])) === 'late') fail(`${what}: did not end within ${CLOSE_BOUND_MS} ms`)
    }
    const took = Date.now() - started
    await Promise.race([sending.catch(() => {}), new Promise((r) => setTimeout(r, CLOSE_BOUND_MS).unref())])
    if (outcome === 'pending') fail(`${what}: the sendZc promise did not settle`)
    let open = false
    try {
      open = fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:') && fd === s.fd && !s.closed
    } catch {
      open = false
    }
    if (open) fail(`${what}: the descriptor is still open`)
    w.log(`  -> ${took} ms, sendZc ${outcome}`)
    cover(`stalled peer ended by ${this.ending}`)
    done()
  }
  toString() {
    return `stalled peer: sendZc(${this.mb} MiB) on ring #${this.ring}, then ${this.ending} (timeout ${this.timeout})`
  }
}

export const hostileCmd = fc.oneof(
  { weight: 4, arbitrary: fc.record({ s: fc.nat(1023), len: fc.integer({ min: 1, max: 20000 }), seed: fc.nat(255) }).map(({ s, len, seed }) => new TransferSend(s, len, seed)) },
  { weight: 2, arbitrary: fc.nat(1023).map((s) => new AdoptOwned(s)) },
  {
    weight: 1,
    arbitrary: fc
      .record({ r: fc.nat(1023), mb: fc.constantFrom(4, 16), e: fc.constantFrom<Ending>('close', 'close', 'destroy', 'ring'), t: fc.constantFrom(0, 50, 300) })
      .map(({ r, mb, e, t }) => new StalledPeer(r, mb, e, t)),
  },
)
