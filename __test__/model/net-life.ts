// Commands: rings for sockets, buffer groups (valid and invalid options, ids
// in use, close, dropped and collected with chunks held), connected pairs
// (TCP over loopback, Unix), shutdown, close of streams and of the ring
// under them.

import fc from 'fast-check'
import * as path from 'node:path'
import { type Bad, Cmd, badNumbers } from './cmd.js'
import { checkErrorShape, cover, fail, show, sleep, thrownCode, tick, zcio } from './model.js'
import {
  type GroupM, type NetRingM, type Stream, type StreamM, liveGroups, liveNetRings, liveStreams, openNetRings, releaseChunk,
} from './net-model.js'
import { pickStream } from './net-send.js'
import type { World } from './world.js'
type InetAddress = import('../../index.js').InetAddress

const MAX_NET_RINGS = 3
const MAX_GROUPS = 8
const MAX_PAIRS = 4
const CONNECT_TIMEOUT_MS = 5000

export function addNetRing(w: World, entries: number, poolSize: number, busyPoll = 0, sqpoll = false): NetRingM | null {
  if (w.net.rings.length >= MAX_NET_RINGS) return null
  // Busy polling changes only how the driver waits: every outcome stays the
  // same, on either backend.
  const ring = new zcio.Ring(sqpoll ? { entries, sqpoll: 10 } : busyPoll > 0 ? { entries, busyPoll } : { entries })
  if (busyPoll > 0) cover('network ring with busy polling')
  const r: NetRingM = { name: `net${w.net.rings.length}`, real: ring, closed: false, pool: null, groups: [], streams: [] }
  const pool = new zcio.RegisteredBufferPool(ring, poolSize, 4)
  r.pool = { real: pool, size: poolSize, bufs: [0, 1, 2, 3].map((index) => ({ index, acquired: false, sends: 0, poisoned: false })) }
  w.net.rings.push(r)
  w.log(`  ${r.name} = new Ring({ entries: ${entries}${busyPoll > 0 ? `, busyPoll: ${busyPoll}` : ''}${sqpoll ? ', sqpoll: 10' : ''} }), with a pool of 4 x ${poolSize}`)
  return r
}

/** An open network ring (made when there is none), chosen by `n`. */
function pickNetRing(w: World, n: number, open = true): NetRingM | null {
  const rings = open ? openNetRings(w) : liveNetRings(w)
  if (rings.length > 0) return rings[n % rings.length]
  return open ? addNetRing(w, 64, 4096) : null
}

class NewNetRing extends Cmd {
  constructor(readonly entries: number, readonly poolSize: number, readonly busyPoll: number) {
    super()
  }
  act(w: World) {
    if (!addNetRing(w, this.entries, this.poolSize, this.busyPoll)) w.log('  (network ring limit reached: skipped)')
  }
  toString() {
    return `network ring (entries ${this.entries}, pool buffers of ${this.poolSize}${this.busyPoll > 0 ? `, busyPoll ${this.busyPoll}` : ''})`
  }
}

// ---------------------------------------------------------------------------
// Buffer groups

type IdSel = { mode: 'small' | 'same' | 'high'; v: number }
const BAD_GROUP: { opts: Record<string, unknown>; code: string; label: string }[] = [
  { opts: { bufferCount: 3 }, code: 'ERR_INVALID_ARG_VALUE', label: 'bufferCount 3' },
  { opts: { bufferCount: 0 }, code: 'ERR_INVALID_ARG_VALUE', label: 'bufferCount 0' },
  { opts: { bufferCount: 65536 }, code: 'ERR_INVALID_ARG_VALUE', label: 'bufferCount 65536' },
  { opts: { bufferCount: 24 }, code: 'ERR_INVALID_ARG_VALUE', label: 'bufferCount 24' },
  { opts: { bufferSize: 0 }, code: 'ERR_INVALID_ARG_VALUE', label: 'bufferSize 0' },
  { opts: { bufferSize: 2 ** 30 + 1 }, code: 'ERR_INVALID_ARG_VALUE', label: 'bufferSize 2 ** 30 + 1' },
  { opts: { groupId: 65536 }, code: 'ERR_OUT_OF_RANGE', label: 'groupId 65536' },
  { opts: { groupId: -1 }, code: 'ERR_OUT_OF_RANGE', label: 'groupId -1' },
  { opts: { incremental: 1 }, code: 'ERR_INVALID_ARG_TYPE', label: 'incremental 1' },
  ...badNumbers(65535).filter((b: Bad) => b.label !== '65536').map((b: Bad) => ({ opts: { groupId: b.value }, code: b.code, label: `groupId ${b.label}` })),
]

/** Whether `id` is taken on `r`: by an open group, or a closed one a receive may still land in. */
function idState(r: NetRingM, id: number): 'used' | 'maybe' | 'free' {
  let state: 'used' | 'maybe' | 'free' = 'free'
  for (const g of r.groups) {
    if (g.groupId !== id) continue
    let s: 'used' | 'maybe' | 'free' = 'free'
    if (!g.closed) s = g.real ? 'used' : 'maybe'
    else if ([...g.receivers].some((x) => !x.done)) s = [...g.receivers].some((x) => !x.done && x.mode === 'recv') ? 'used' : 'maybe'
    if (s === 'used') return 'used'
    if (s === 'maybe') state = 'maybe'
  }
  return state
}

class NewGroup extends Cmd {
  constructor(readonly ring: number, readonly id: IdSel, readonly size: number, readonly count: number, readonly bad: number | null) {
    super()
  }
  act(w: World) {
    const r = pickNetRing(w, this.ring, this.ring % 8 !== 0)
    if (!r) return
    if (this.bad !== null) {
      const b = BAD_GROUP[this.bad % BAD_GROUP.length]
      const opts = { groupId: 1, bufferSize: 64, bufferCount: 2, ...b.opts }
      const res = thrownCode(() => new zcio.BufferGroup(r.real!, opts as never))
      const what = `new BufferGroup(${r.name}, ${show(opts)})`
      w.log(`  ${what}`)
      if (!res.threw) fail(`${what} did not throw`)
      checkErrorShape(res.error, b.code, what)
      return
    }
    if (w.net.groups.length >= MAX_GROUPS) return
    const same = r.groups.filter((g) => g.real || !g.closed)
    const id = this.id.mode === 'same' && same.length > 0 ? same[this.id.v % same.length].groupId : this.id.mode === 'high' ? 65535 - (this.id.v % 3) : this.id.v % 6
    newGroup(w, r, id, this.size, this.count)
  }
  toString() {
    if (this.bad !== null) return `new BufferGroup(ring #${this.ring}, bad #${this.bad})`
    return `new BufferGroup(ring #${this.ring}, id ${this.id.mode} ${this.id.v}, ${this.size} x ${this.count})`
  }
}

export function newGroup(w: World, r: NetRingM, groupId: number, size: number, count: number): GroupM | null {
  const what = `new BufferGroup(${r.name}, { groupId: ${groupId}, bufferSize: ${size}, bufferCount: ${count} })`
  const state = idState(r, groupId)
  let real
  let error: unknown
  try {
    real = new zcio.BufferGroup(r.real!, { groupId, bufferSize: size, bufferCount: count })
  } catch (e) {
    error = e
  }
  const code = (error as { code?: string } | undefined)?.code
  w.log(`  ${what}${error ? ` -> ${code}` : ''}`)
  if (r.closed) {
    if (!error) fail(`${what} on a closed ring did not throw`)
    checkErrorShape(error, 'ERR_ZCIO_CLOSED', what)
    return null
  }
  if (state === 'used' || (state === 'maybe' && error)) {
    cover(`group id in use (${state === 'used' ? 'certain' : 'possible'})`)
    if (!error) fail(`${what} succeeded although group ${groupId} is in use on ${r.name}`)
    checkErrorShape(error, 'ERR_ZCIO_GROUP_IN_USE', what)
    return null
  }
  if (error) fail(`${what} threw ${code}: ${(error as Error).message}`)
  const g: GroupM = {
    name: `group${w.net.groups.length}`, ring: r, real: real!, groupId, size, count, closed: false, chunks: [], receivers: new Set(), zeroEpoch: 0, deliveries: 0, enobufs: 0,
  }
  w.net.groups.push(g)
  r.groups.push(g)
  w.log(`    = ${g.name}`)
  return g
}

class CloseGroup extends Cmd {
  constructor(readonly group: number) {
    super()
  }
  check(w: World) {
    return liveGroups(w).length > 0
  }
  act(w: World) {
    const gs = liveGroups(w)
    const g = gs[this.group % gs.length]
    // Closed before the call: receives waiting for a buffer end inside it.
    g.closed = true
    const res = thrownCode(() => g.real!.close())
    w.log(`  ${g.name}.close()`)
    if (res.threw) fail(`${g.name}.close() threw ${res.code}`)
    cover(g.chunks.length > 0 ? 'group closed with chunks held' : 'group closed')
  }
  toString() {
    return `group #${this.group}.close()`
  }
}

/** Drops the group (chunk objects stay held) and collects it: held chunks must keep their bytes. */
class DropGroup extends Cmd {
  constructor(readonly group: number) {
    super()
  }
  check(w: World) {
    return liveGroups(w).length > 0
  }
  async act(w: World) {
    const gs = liveGroups(w)
    const g = gs[this.group % gs.length]
    // Chunks of recvCallback are given back by id, through the group.
    if ([...g.receivers].some((r) => !r.done && r.mode === 'callback')) {
      w.log(`  (${g.name} has a recvCallback receive: not dropped)`)
      return
    }
    for (const c of g.chunks.filter((x) => x.obj === null)) releaseChunk(w, c, false)
    cover(g.chunks.length > 0 ? 'group dropped and collected with chunks held' : 'group dropped and collected')
    g.real = null
    w.log(`  ${g.name} = null; gc()`)
    if (!w.session.hasGc) return
    for (let k = 0; k < 2; k++) {
      globalThis.gc!()
      await tick()
    }
  }
  toString() {
    return `drop group #${this.group}, gc()`
  }
}

// ---------------------------------------------------------------------------
// Streams

export class NewPair extends Cmd {
  constructor(readonly ring: number, readonly unix: boolean, readonly noDelay: boolean) {
    super()
  }
  async act(w: World) {
    if (w.net.pairs >= MAX_PAIRS) return
    const r = pickNetRing(w, this.ring)
    if (!r) return
    w.net.pairs++
    const ring = r.real!
    const k = w.net.pairs
    const sock = path.join(w.session.dir, `sock-${w.id()}`)
    const listener = zcio.TcpListener.bind(ring, this.unix ? { path: sock } : { port: 0 })
    const accepted = listener.accept()
    w.track(accepted, `${r.name} accept`)
    const connecting = zcio.TcpStream.connect(ring, this.unix ? { path: sock } : { port: (listener.address as InetAddress).port })
    w.track(connecting, `${r.name} connect`)
    const got = await Promise.race([Promise.all([connecting, accepted]), sleep(CONNECT_TIMEOUT_MS).then(() => null)])
    if (got === null || got[1] === null) fail(`connecting a ${this.unix ? 'Unix' : 'TCP'} pair on ${r.name} did not finish`)
    const [client, server] = got as [Stream, Stream]
    listener.close()
    const after = await Promise.race([listener.accept(), sleep(CONNECT_TIMEOUT_MS).then(() => 'timeout')])
    if (after !== null) fail(`accept() after the listener closed gave ${show(after)}, expected null`)
    if (this.unix) await import('node:fs').then((fs) => fs.rmSync(sock, { force: true }))
    if (this.noDelay && !this.unix) client.setNoDelay(true)
    const mk = (name: string, real: Stream): StreamM => ({
      name, ring: r, real, peer: null as unknown as StreamM, unix: this.unix, closed: false, closeDone: false, shutWrite: false, closedUnderRecv: false,
      out: new Uint8Array(4096), outLen: 0, cut: Infinity, notAcquiredFrom: Infinity, sends: new Set(), received: 0, inCut: Infinity, eof: false, recv: null,
    })
    const a = mk(`client${k}`, client)
    const b = mk(`server${k}`, server)
    a.peer = b
    b.peer = a
    w.net.streams.push(a, b)
    r.streams.push(a, b)
    w.log(`  ${a.name} <-> ${b.name} on ${r.name} (${this.unix ? 'Unix' : 'TCP'})`)
    cover(`pair connected (${this.unix ? 'Unix' : 'TCP'})`)
  }
  toString() {
    return `connected pair (ring #${this.ring}, ${this.unix ? 'Unix' : 'TCP'}${this.noDelay ? ', noDelay' : ''})`
  }
}

class Shutdown extends Cmd {
  constructor(readonly stream: number) {
    super()
  }
  check(w: World) {
    return liveStreams(w).length > 0
  }
  act(w: World) {
    const s = pickStream(w, this.stream)!
    const res = thrownCode(() => s.real!.shutdown('write'))
    w.log(`  ${s.name}.shutdown('write')`)
    if (s.closed || s.ring.closed) {
      if (!res.threw) fail(`${s.name}.shutdown() after close did not throw`)
      checkErrorShape(res.error, 'ERR_ZCIO_CLOSED', `${s.name}.shutdown()`)
      return
    }
    if (res.threw && !(s.peer.closed && res.code === 'ENOTCONN')) fail(`${s.name}.shutdown('write') threw ${res.code}`)
    s.shutWrite = true
  }
  toString() {
    return `stream #${this.stream}.shutdown('write')`
  }
}

export function closeStream(w: World, s: StreamM): Promise<void> {
  const what = `${s.name}.close()`
  w.log(`  ${what}${s.sends.size > 0 ? ` with ${s.sends.size} sends unsettled` : ''}`)
  cover(s.sends.size > 0 ? 'stream closed with sends unsettled' : 'stream closed')
  s.closed = true
  const r = s.recv
  if (r && !r.done && !r.stopped) {
    // The descriptor closes at once under the receive, which is not
    // cancelled and ends only when the peer closes.
    if (!w.known('close-recv')) r.orphaned = false
    else {
      r.orphaned = true
      s.closedUnderRecv = true
      cover('known issue: stream closed under a receive')
    }
  }
  let p: Promise<void>
  try {
    p = s.real!.close()
  } catch (e) {
    fail(`${what} threw synchronously (${(e as { code?: string }).code})`)
  }
  w.track(p, what)
  p.then(
    () => {
      s.closeDone = true
      // (Sends of a batch are heard of when the whole batch resolves, later.)
      const left = [...s.sends].filter((x) => !x.settled && !x.batched)
      if (left.length > 0) w.asyncFail(new Error(`${what} resolved before its sends settled: ${left.map((x) => x.label).join(', ')}`))
    },
    (e) => w.asyncFail(new Error(`${what} rejected with ${(e as { code?: string }).code}`)),
  )
  return p
}

class CloseStream extends Cmd {
  constructor(readonly stream: number) {
    super()
  }
  check(w: World) {
    return liveStreams(w).length > 0
  }
  act(w: World) {
    void closeStream(w, pickStream(w, this.stream)!)
  }
  toString() {
    return `stream #${this.stream}.close()`
  }
}

/** Closes a network ring under its groups, streams and pool. */
export function closeNetRing(w: World, r: NetRingM): boolean {
  // A zero-copy send whose bytes the peer has not read keeps the memory
  // until they are read; close aborts such connections after a short wait.
  if (r.streams.some((s) => [...s.sends].some((x) => x.zc && !x.settled))) cover('ring closed under an unread zero-copy send')
  w.log(`  ${r.name}.close()`)
  // Completions may be delivered inside close().
  r.closed = true
  const res = thrownCode(() => r.real!.close())
  if (res.threw) fail(`${r.name}.close() threw ${res.code}`)
  cover('network ring closed')
  return true
}

class CloseNetRing extends Cmd {
  constructor(readonly ring: number) {
    super()
  }
  check(w: World) {
    return openNetRings(w).length > 0
  }
  act(w: World) {
    const rs = openNetRings(w)
    const r = rs[this.ring % rs.length]
    if (!closeNetRing(w, r)) w.log(`  (${r.name} has zero-copy sends unsettled: not closed)`)
  }
  toString() {
    return `network ring #${this.ring}.close()`
  }
}

export const netLifeCmd = fc.oneof(
  {
    weight: 1,
    arbitrary: fc
      .record({ e: fc.constantFrom(4, 8, 64, 256), s: fc.constantFrom(64, 4096, 65536), b: fc.constantFrom(0, 0, 30, 200) })
      .map(({ e, s, b }) => new NewNetRing(e, s, b)),
  },
  {
    weight: 4,
    arbitrary: fc
      .record({
        r: fc.nat(1023),
        id: fc.record({ mode: fc.constantFrom<IdSel['mode']>('small', 'small', 'same', 'high'), v: fc.nat(1023) }),
        s: fc.constantFrom(1, 16, 100, 4096, 16384),
        c: fc.constantFrom(1, 2, 4, 8, 64),
        bad: fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.nat(63) }),
      })
      .map(({ r, id, s, c, bad }) => new NewGroup(r, id, s, c, bad)),
  },
  { weight: 1, arbitrary: fc.nat(1023).map((g) => new CloseGroup(g)) },
  { weight: 1, arbitrary: fc.nat(1023).map((g) => new DropGroup(g)) },
  { weight: 4, arbitrary: fc.record({ r: fc.nat(1023), u: fc.nat(5).map((x) => x === 0), n: fc.boolean() }).map(({ r, u, n }) => new NewPair(r, u, n)) },
  { weight: 1, arbitrary: fc.nat(1023).map((s) => new Shutdown(s)) },
  { weight: 1, arbitrary: fc.nat(1023).map((s) => new CloseStream(s)) },
  { weight: 1, arbitrary: fc.nat(1023).map((r) => new CloseNetRing(r)) },
)
