// The randomized test of the RDMA verbs API: random sequences of posts
// (send, receive, RDMA write and read), polls, waits, closes in any order,
// forced errors and collected regions on two connected queue pairs, checked
// against a model after every step. What it holds the library to:
//
// - every posted wrId comes back exactly once, from the right queue;
// - a successful receive holds the bytes of the matching send, a successful
//   WRITE or READ moved the right bytes: memory stays valid while the device
//   uses it, even when the program dropped its last reference;
// - `mr.inUse` counts the work requests that hold the region, and close()
//   is refused (ERR_ZCIO_MR_IN_USE, ERR_ZCIO_CQ_IN_USE, ERR_ZCIO_PD_IN_USE,
//   ERR_ZCIO_CONTEXT_IN_USE) exactly while something still uses the object;
// - anything used after close() throws ERR_ZCIO_CLOSED, and a rejected post
//   holds nothing;
// - once a queue pair is closed or forced into the error state, everything
//   outstanding comes back (flushed), and then everything closes in order;
// - a post that could overflow its completion queue (tiny queues, shared by
//   both queue pairs or not) throws ERR_ZCIO_CQ_FULL, any other is taken,
//   and `cq.pending` counts what is to come: no completion is ever dropped;
// - completions carry the queue pair's number, also after both queue pairs
//   were closed and new ones connected on the same queues;
// - several ZeroCopyBufferManagers sending on the same queue pairs each take
//   exactly their own completions (every completion is fed to all of them),
//   and the peer receives each header and data intact.
//
// It needs an RDMA device: `npm run test:rdma` runs it in the Soft-RoCE VM
// for ZCIO_RDMA_FUZZ_TIME (default 20 s); elsewhere it skips visibly.
// A failure prints the seed and path; ZCIO_RDMA_FUZZ_SEED / _PATH replay it.

import test from 'ava'
import fc from 'fast-check'
import { zcio } from './support.js'

const { rdma, probe } = zcio
type Ctx = ReturnType<typeof rdma.open>
type Pd = ReturnType<Ctx['allocPd']>
type Cq = ReturnType<Ctx['createCq']>
type Mr = ReturnType<Pd['allocate']>
type Qp = ReturnType<ReturnType<Pd['createQp']>['handshake']>
type Wc = ReturnType<Cq['poll']>[number]
type Manager = InstanceType<typeof zcio.ZeroCopyBufferManager>

const p = probe()
const required = process.env.ZCIO_REQUIRE_RDMA === '1'
const rdmaTest = p.rdma || required ? test.serial : test.skip
if (!p.rdma && !required) console.warn(`zcio: skipping the randomized RDMA test: ${p.rdmaReason}`)

/** Bytes per message slot: receives are this long, sends at most this long. */
const SLOT = 256
/** Slots of each side's remote window (the target of WRITE and READ). */
const WINDOW_SLOTS = 8
const FLUSH = 5
/** wrIds from here are the managers'. */
const RESERVED = 2 ** 52
const MANAGER_DATA = 4096
const MANAGER_HEADER = 16

/** Per run: completion queue size, and whether both queue pairs share one queue. */
interface Config {
  cqEntries: number
  sharedCq: boolean
}

interface CqM {
  name: string
  real: Cq
  capacity: number
  closed: boolean
  waits: number
}

/** One connection: the two queue pairs made together (a reconnect makes a new one). */
interface Conn {
  id: number
  /** A queue pair of it was closed or forced into error: its work may fail. */
  broken: boolean
  /** Per side: its queue pair is closed or in error (receives come back flushed). */
  down: [boolean, boolean]
  /** Per side: sends (successful to be) not yet matched with a peer's receive, in post order. */
  sends: [WrM[], WrM[]]
}

interface MgrM {
  index: number
  real: Manager
  headers: number
  /** Its sends outstanding (model ids = keys). */
  pending: number
  /** Stands in for its regions in the work request model. */
  mr: MrM
}

interface MrM {
  name: string
  real: Mr | null
  slots: number
  busy: boolean[]
  /** Work requests that hold it (the model's count of `mr.inUse`). */
  holds: number
  closed: boolean
}

interface WrM {
  id: number
  side: Side
  kind: 'send' | 'recv' | 'rdma-write' | 'rdma-read'
  mr: MrM
  slot: number
  len: number
  /** send / write: the bytes sent; read: the bytes expected. */
  bytes: Uint8Array | null
  /** write / read: the peer's window slot. */
  remoteSlot: number
  imm?: number
  conn: Conn
  /** The queue pair it was posted on. */
  qpn: number
  /** Sent by this manager (its key is `id`). */
  manager?: MgrM
}

interface Side {
  name: 'A' | 'B'
  index: 0 | 1
  qp: Qp
  qpn: number
  cq: CqM
  qpClosed: boolean
  errored: boolean
  mrs: MrM[]
  window: MrM
  windowBusy: boolean[]
  /** Work requests outstanding on this side's queue pairs (the current one and closed ones), by model id. */
  out: Map<number, WrM>
  /** Receives posted here, in order. */
  recvs: WrM[]
}

class World {
  readonly log: string[] = []
  nextId = 1
  nextMr = 0
  nextConn = 0
  ctx: Ctx
  pd: Pd
  cqs: CqM[]
  sides: [Side, Side]
  conn: Conn
  managers: MgrM[] = []
  /** Closed queue pairs of earlier connections, kept referenced until their work is back. */
  retired: Qp[] = []
  failed: string | null = null
  constructor(readonly config: Config) {
    this.ctx = rdma.open(process.env.ZCIO_RDMA_DEVICE)
    this.pd = this.ctx.allocPd()
    const cq = (name: string): CqM => {
      const real = this.ctx.createCq(config.cqEntries)
      return { name, real, capacity: real.capacity, closed: false, waits: 0 }
    }
    this.cqs = config.sharedCq ? [cq('cq')] : [cq('cqA'), cq('cqB')]
    const side = (name: 'A' | 'B', index: 0 | 1): Side => ({
      name, index, qp: null as unknown as Qp, qpn: -1, cq: this.cqs[index % this.cqs.length], qpClosed: false, errored: false, mrs: [],
      window: this.newMr(WINDOW_SLOTS), windowBusy: new Array(WINDOW_SLOTS).fill(false),
      out: new Map(), recvs: [],
    })
    this.sides = [side('A', 0), side('B', 1)]
    this.conn = this.connect()
    for (const s of this.sides) s.mrs.push(this.newMr(4))
    for (const headers of [1, 2]) {
      const real = new zcio.ZeroCopyBufferManager({ dataSize: MANAGER_DATA, headerSize: MANAGER_HEADER, headerCount: headers }, this.pd)
      real.data.set(pattern(MANAGER_DATA, 77 + headers))
      const index = this.managers.length
      const mr: MrM = { name: `manager${index}`, real: null, slots: 1, busy: [false], holds: 0, closed: false }
      this.managers.push({ index, real, headers, pending: 0, mr })
    }
  }
  /** Two new queue pairs on the sides' queues, connected: the current connection. */
  connect(): Conn {
    const [a, b] = this.sides
    const opts = { maxSendWr: 32, maxRecvWr: 32 }
    const pa = this.pd.createQp(a.cq.real, a.cq.real, opts)
    const pb = this.pd.createQp(b.cq.real, b.cq.real, opts)
    a.qp = pa.handshake(pb.endpoint())
    b.qp = pb.handshake(pa.endpoint())
    for (const s of this.sides) {
      s.qpn = s.qp.qpn
      s.qpClosed = false
      s.errored = false
    }
    this.conn = { id: this.nextConn++, broken: false, down: [false, false], sends: [[], []] }
    return this.conn
  }
  /** Completions to come on `cq`: the model's count of `cq.pending`. */
  pendingOf(cq: CqM): number {
    return this.sides.reduce((n, s) => n + (s.cq === cq ? s.out.size : 0), 0)
  }
  newMr(slots: number): MrM {
    const real = this.pd.allocate(slots * SLOT)
    return { name: `mr${this.nextMr++}`, real, slots, busy: new Array(slots).fill(false), holds: 0, closed: false }
  }
  peer(s: Side): Side {
    return s === this.sides[0] ? this.sides[1] : this.sides[0]
  }
  fail(msg: string): never {
    this.failed ??= msg
    throw new Error(`${msg}\n  trace:\n    ${this.log.slice(-60).join('\n    ')}`)
  }
  /** The current connection is broken (a queue pair closed or in error): peers may see errors too. */
  get broken(): boolean {
    return this.conn.broken
  }
  /** A side's queue pair was closed or forced into error. */
  down(s: Side): void {
    this.conn.down[s.index] = true
    this.conn.broken = true
  }
}

function pattern(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len)
  let x = seed * 2654435761 + 1
  for (let i = 0; i < len; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    out[i] = x >>> 24
  }
  return out
}

function codeOf(f: () => unknown): string | null {
  try {
    f()
    return null
  } catch (e) {
    return (e as { code?: string }).code ?? 'no code'
  }
}

function checkInUse(w: World): void {
  for (const s of w.sides) {
    for (const m of [...s.mrs, s.window]) {
      if (m.real && !m.closed && m.real.inUse !== m.holds) w.fail(`${m.name}.inUse is ${m.real.inUse}, the model counts ${m.holds}`)
    }
  }
  for (const cq of w.cqs) {
    if (!cq.closed && cq.real.pending !== w.pendingOf(cq)) w.fail(`${cq.name}.pending is ${cq.real.pending}, the model counts ${w.pendingOf(cq)}`)
  }
}

/** The model id of a completion: its wrId, or for a manager's send the key its manager (and only it) returns. */
function modelId(w: World, wc: Wc): number {
  if (wc.wrId < RESERVED) return wc.wrId
  const keys = w.managers.map((m) => m.real.handle(wc))
  const owners = keys.flatMap((k, i) => (k === undefined ? [] : [i]))
  if (owners.length !== 1) w.fail(`wrId ${wc.wrId} (qp ${wc.qpNum}) was taken by ${owners.length} managers (${owners.join(', ')})`)
  if (w.managers.some((m) => m.real.handle(wc) !== undefined)) w.fail(`wrId ${wc.wrId}: a manager took a completion twice`)
  const key = keys[owners[0]]!
  const wr = w.sides.map((s) => s.out.get(key)).find((x) => x)
  if (!wr || wr.manager !== w.managers[owners[0]]) w.fail(`manager ${owners[0]} took wrId ${wc.wrId} for key ${key}, which is not its pending send`)
  wr.manager.pending--
  saw('manager send back')
  return key
}

/** Takes one completion of `cq` into the model. */
function complete(w: World, cq: CqM, wc: Wc): void {
  const id = modelId(w, wc)
  const s = w.sides.find((x) => x.out.has(id))
  const wr = s?.out.get(id)
  w.log.push(`  ${cq.name} <- wrId ${wc.wrId} (${id}) qp ${wc.qpNum} ${wc.opcode ?? '?'} status ${wc.status}${wc.byteLen !== undefined ? ` len ${wc.byteLen}` : ''}`)
  if (!s || !wr) w.fail(`${cq.name} gave wrId ${wc.wrId}, which is not outstanding`)
  if (s.cq !== cq) w.fail(`${s.name}'s wrId ${wc.wrId} came back from ${cq.name}, not ${s.cq.name}`)
  if (wc.qpNum !== wr.qpn) w.fail(`wrId ${wc.wrId} was posted on queue pair ${wr.qpn}, its completion says ${wc.qpNum}`)
  s.out.delete(id)
  wr.mr.holds--
  wr.mr.busy[wr.slot] = false
  if (wr.kind === 'rdma-write' || wr.kind === 'rdma-read') w.peer(s).windowBusy[wr.remoteSlot] = false
  if (wr.kind === 'recv') s.recvs.splice(s.recvs.indexOf(wr), 1)
  saw(wc.status === 0 ? `${wr.kind} ok` : `${wr.kind} status ${wc.status}`)
  if (wr.conn !== w.conn) saw(`completion of an earlier connection`)
  if (wc.status !== 0) {
    if (!wr.conn.broken) w.fail(`wrId ${wc.wrId} (${wr.kind}) failed with status ${wc.status} while both queue pairs are healthy`)
    if (wr.conn.down[s.index] && wc.status !== FLUSH && wr.kind === 'recv') {
      w.fail(`receive ${wc.wrId} of a closed or errored queue pair came back with status ${wc.status}, not flushed (${FLUSH})`)
    }
    return
  }
  if (wc.opcode !== wr.kind) w.fail(`wrId ${wc.wrId} was a ${wr.kind}, its completion says ${wc.opcode}`)
  const buf = wr.mr.real?.buffer
  if (wr.kind === 'recv') {
    // RC delivers sends in order: this receive got the oldest unmatched send of the peer.
    const send = wr.conn.sends[1 - s.index].shift()
    if (!send) w.fail(`receive ${wc.wrId} succeeded, but ${w.peer(s).name} has no send for it`)
    if (wc.byteLen !== send.len) w.fail(`receive ${wc.wrId} got ${wc.byteLen} bytes, the send ${send.id} had ${send.len}`)
    if ((wc.immData ?? undefined) !== send.imm) w.fail(`receive ${wc.wrId}: immData ${wc.immData}, sent ${send.imm}`)
    if (buf) {
      const got = buf.subarray(wr.slot * SLOT, wr.slot * SLOT + send.len)
      if (!equal(got, send.bytes!)) w.fail(`receive ${wc.wrId} holds other bytes than send ${send.id}`)
    }
  } else if (wr.kind === 'rdma-write') {
    const peer = w.peer(s)
    const win = peer.window.real!.buffer.subarray(wr.remoteSlot * SLOT, wr.remoteSlot * SLOT + wr.len)
    if (!equal(win, wr.bytes!)) w.fail(`write ${wc.wrId} completed, but ${peer.name}'s window slot ${wr.remoteSlot} differs`)
  } else if (wr.kind === 'rdma-read' && buf) {
    if (!equal(buf.subarray(wr.slot * SLOT, wr.slot * SLOT + wr.len), wr.bytes!)) w.fail(`read ${wc.wrId} brought other bytes`)
  }
}

/** What the runs exercised (printed, and checked to be non-zero). */
const seen = new Map<string, number>()
function saw(what: string): void {
  seen.set(what, (seen.get(what) ?? 0) + 1)
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

function pollAll(w: World, cq: CqM): number {
  if (cq.closed) return 0
  let n = 0
  for (;;) {
    const got = cq.real.poll(16)
    for (const wc of got) complete(w, cq, wc)
    n += got.length
    if (got.length < 16) return n
  }
}

function freeSlot(busy: boolean[], seed: number): number {
  const free = busy.map((b, i) => (b ? -1 : i)).filter((i) => i >= 0)
  return free.length === 0 ? -1 : free[seed % free.length]
}

/** A local region and slot for a new work request, or null. */
function pick(s: Side, seed: number): { mr: MrM; slot: number } | null {
  const open = s.mrs.filter((m) => !m.closed && m.busy.some((b) => !b))
  if (open.length === 0) return null
  const mr = open[seed % open.length]
  return { mr, slot: freeSlot(mr.busy, seed >> 3) }
}

type Act = (w: World) => void | Promise<void>
interface Cmd {
  label: string
  act: Act
}

/** A new work request's model, on `s`'s current queue pair. */
function newWr(w: World, s: Side, fields: Omit<WrM, 'id' | 'side' | 'conn' | 'qpn'>): WrM {
  return { id: w.nextId++, side: s, conn: w.conn, qpn: s.qpn, ...fields }
}

function post(w: World, s: Side, wr: WrM, call: () => void): void {
  const full = w.pendingOf(s.cq) >= s.cq.capacity
  const code = codeOf(call)
  w.log.push(`${s.name}.post ${wr.kind} wrId ${wr.id} ${wr.mr.name}[${wr.slot}] len ${wr.len}${full ? ` (${s.cq.name} full)` : ''}${code ? ` -> ${code}` : ''}`)
  if (s.qpClosed) {
    if (code !== 'ERR_ZCIO_CLOSED') w.fail(`posting on a closed queue pair gave ${code}, expected ERR_ZCIO_CLOSED`)
    return
  }
  if (full) {
    if (code !== 'ERR_ZCIO_CQ_FULL') w.fail(`a post with ${w.pendingOf(s.cq)} completions to come on ${s.cq.name} (${s.cq.capacity} entries) gave ${code}, expected ERR_ZCIO_CQ_FULL`)
    saw('post refused: completion queue full')
    return
  }
  if (code !== null) {
    // A queue pair in error (forced, or after its peer went away) may refuse
    // posts; rxe accepts and flushes them.
    if (w.broken && code !== 'ERR_ZCIO_CQ_FULL') return
    w.fail(`${wr.kind} ${wr.id} on ${s.name} was refused with ${code}`)
  }
  wr.mr.holds++
  wr.mr.busy[wr.slot] = true
  s.out.set(wr.id, wr)
  if (wr.kind === 'recv') s.recvs.push(wr)
  if (wr.kind === 'send') wr.conn.sends[s.index].push(wr)
  if (wr.manager) wr.manager.pending++
}

/** Relative weights of `cmds()`, in order: posts and polls often, closes and errors now and then. */
const WEIGHTS = [2, 4, 4, 3, 1, 3, 2, 1, 1, 1, 1, 3, 1]

const cmds = (): fc.Arbitrary<Cmd>[] => {
  const side = fc.nat(1)
  const seed = fc.nat(1 << 20)
  return [
    fc.tuple(side, fc.integer({ min: 1, max: 4 })).map(([i, slots]) => ({
      label: `side ${i}: allocate ${slots} slots`,
      act: (w: World) => {
        const s = w.sides[i]
        if (s.mrs.filter((m) => !m.closed).length >= 4) return
        const m = w.newMr(slots)
        s.mrs.push(m)
        w.log.push(`${s.name}: ${m.name} = allocate(${slots * SLOT})`)
      },
    })),
    fc.tuple(side, seed).map(([i, sd]) => ({
      label: `side ${i}: postReceive (${sd})`,
      act: (w: World) => {
        const s = w.sides[i]
        const at = pick(s, sd)
        if (!at || s.out.size >= 24) return
        const wr = newWr(w, s, { kind: 'recv', mr: at.mr, slot: at.slot, len: SLOT, bytes: null, remoteSlot: -1 })
        post(w, s, wr, () => s.qp.postReceive(at.mr.real!, at.slot * SLOT, at.slot * SLOT + SLOT, wr.id))
      },
    })),
    fc.tuple(side, seed, fc.integer({ min: 1, max: SLOT }), fc.boolean()).map(([i, sd, len, imm]) => ({
      label: `side ${i}: postSend ${len} bytes${imm ? ' with imm' : ''} (${sd})`,
      act: (w: World) => {
        const s = w.sides[i]
        const at = pick(s, sd)
        if (!at || s.out.size >= 24) return
        const bytes = pattern(len, w.nextId)
        at.mr.real!.buffer.set(bytes, at.slot * SLOT)
        const wr = newWr(w, s, { kind: 'send', mr: at.mr, slot: at.slot, len, bytes, remoteSlot: -1, imm: imm ? sd : undefined })
        const sges = [{ mr: at.mr.real!, start: at.slot * SLOT, end: at.slot * SLOT + len }]
        post(w, s, wr, () => s.qp.postSendSges(sges, wr.id, wr.imm))
      },
    })),
    fc.tuple(side, seed, fc.integer({ min: 1, max: SLOT }), fc.boolean()).map(([i, sd, len, read]) => ({
      label: `side ${i}: ${read ? 'postRead' : 'postWrite'} ${len} bytes (${sd})`,
      act: (w: World) => {
        const s = w.sides[i]
        const peer = w.peer(s)
        const at = pick(s, sd)
        const rslot = freeSlot(peer.windowBusy, sd >> 5)
        if (!at || rslot < 0 || s.out.size >= 24) return
        const win = peer.window.real!
        let bytes: Uint8Array
        if (read) {
          bytes = pattern(len, w.nextId)
          win.buffer.set(bytes, rslot * SLOT)
        } else {
          bytes = pattern(len, w.nextId)
          at.mr.real!.buffer.set(bytes, at.slot * SLOT)
        }
        const wr = newWr(w, s, { kind: read ? 'rdma-read' : 'rdma-write', mr: at.mr, slot: at.slot, len, bytes, remoteSlot: rslot })
        const sges = [{ mr: at.mr.real!, start: at.slot * SLOT, end: at.slot * SLOT + len }]
        const remote = win.addr + rslot * SLOT
        const before = s.out.size
        post(w, s, wr, () => (read ? s.qp.postRead(sges, remote, win.rkey, wr.id) : s.qp.postWrite(sges, remote, win.rkey, wr.id)))
        if (s.out.size > before) peer.windowBusy[rslot] = true
      },
    })),
    fc.tuple(side, seed).map(([i, sd]) => ({
      label: `side ${i}: a bad post (${sd})`,
      act: (w: World) => {
        const s = w.sides[i]
        const m = s.mrs.find((x) => !x.closed)
        if (!m || s.qpClosed) return
        const bad: [string, () => void][] = [
          ['range past the end', () => s.qp.postSend(m.real!, 0, m.slots * SLOT + 1, w.nextId)],
          ['start after end', () => s.qp.postReceive(m.real!, 8, 4, w.nextId)],
          ['negative wrId', () => s.qp.postSend(m.real!, 0, 1, -1)],
          ['not a region', () => s.qp.postSend({} as never, 0, 1, w.nextId)],
        ]
        const [what, f] = bad[sd % bad.length]
        const code = codeOf(f)
        w.log.push(`${s.name}: bad post (${what}) -> ${code}`)
        if (code === null || code === 'no code') w.fail(`a bad post (${what}) gave ${code}`)
        checkInUse(w)
      },
    })),
    side.map((i) => ({
      label: `side ${i}: poll`,
      act: (w: World) => {
        pollAll(w, w.sides[i].cq)
      },
    })),
    side.map((i) => ({
      label: `side ${i}: wait`,
      act: async (w: World) => {
        const cq = w.sides[i].cq
        if (cq.closed || cq.waits > 0) return
        cq.waits++
        w.log.push(`${cq.name}: wait()`)
        // A wait that outlives this step still feeds the model when it settles.
        const done = cq.real.wait(16).then(
          (wcs) => {
            cq.waits--
            try {
              for (const wc of wcs) complete(w, cq, wc)
            } catch (e) {
              w.failed ??= (e as Error).message
            }
          },
          (e: { code?: string }) => {
            cq.waits--
            if (!(cq.closed && e.code === 'ERR_ZCIO_CLOSED')) w.failed ??= `wait() rejected with ${e.code}`
          },
        )
        await Promise.race([done, new Promise((r) => setTimeout(r, 100))])
      },
    })),
    fc.tuple(side, seed).map(([i, sd]) => ({
      label: `side ${i}: close a region (${sd})`,
      act: (w: World) => {
        const s = w.sides[i]
        const list = s.mrs.filter((m) => !m.closed && m.real)
        if (list.length === 0) return
        const m = list[sd % list.length]
        const code = codeOf(() => m.real!.close())
        w.log.push(`${s.name}: ${m.name}.close() -> ${code ?? 'ok'} (holds ${m.holds})`)
        saw(m.holds > 0 ? 'region close refused' : 'region closed')
        if (m.holds > 0 && code !== 'ERR_ZCIO_MR_IN_USE') w.fail(`${m.name}.close() with ${m.holds} holds gave ${code}`)
        if (m.holds === 0) {
          if (code !== null) w.fail(`${m.name}.close() with nothing outstanding threw ${code}`)
          m.closed = true
          const after = codeOf(() => s.qp.postSend(m.real!, 0, 1, w.nextId))
          if (!s.qpClosed && after !== 'ERR_ZCIO_CLOSED') w.fail(`a post from closed ${m.name} gave ${after}`)
          if (codeOf(() => m.real!.close()) !== null) w.fail(`closing ${m.name} twice threw`)
        }
      },
    })),
    fc.tuple(side, seed).map(([i, sd]) => ({
      label: `side ${i}: drop a region (GC) (${sd})`,
      act: (w: World) => {
        const s = w.sides[i]
        // Only regions whose outstanding work is sends or writes: the bytes
        // are checked at the peer, so a freed region would show.
        const list = s.mrs.filter((m) => m.real && !m.closed && [...s.out.values()].every((x) => x.mr !== m || x.kind === 'send' || x.kind === 'rdma-write'))
        if (list.length === 0) return
        const m = list[sd % list.length]
        w.log.push(`${s.name}: drop ${m.name} (holds ${m.holds}), gc`)
        if (m.holds > 0) saw('region collected with work outstanding')
        m.real = null
        m.closed = true
        globalThis.gc?.()
      },
    })),
    fc.tuple(side, fc.constantFrom('cq', 'pd', 'ctx')).map(([i, what]) => ({
      label: `side ${i}: close the ${what} out of order`,
      act: (w: World) => {
        const cq = w.sides[i].cq
        if (what === 'cq' && cq.closed) return
        // Closed queue pairs whose completions were all taken are gone: when
        // every queue pair using it is, the queue is free to close.
        const cqFree = what === 'cq' && w.sides.every((s) => s.cq !== cq || s.qpClosed) && w.pendingOf(cq) === 0
        const [f, want] =
          what === 'cq' ? [() => cq.real.close(), cqFree ? null : 'ERR_ZCIO_CQ_IN_USE'] : what === 'pd' ? [() => w.pd.close(), 'ERR_ZCIO_PD_IN_USE'] : [() => w.ctx.close(), 'ERR_ZCIO_CONTEXT_IN_USE']
        const code = codeOf(f)
        w.log.push(`close ${what}${cqFree ? '' : ' while in use'} -> ${code ?? 'ok'}`)
        if (code !== want) w.fail(`closing the ${what} gave ${code}, expected ${want ?? 'success'}`)
        if (cqFree) cq.closed = true
      },
    })),
    fc.tuple(side, fc.boolean()).map(([i, close]) => ({
      label: `side ${i}: ${close ? 'close the queue pair' : 'setError'}`,
      act: (w: World) => {
        const s = w.sides[i]
        if (s.qpClosed) return
        w.log.push(`${s.name}: ${close ? 'qp.close()' : 'qp.setError()'} with ${s.out.size} outstanding`)
        if (close) {
          s.qp.close()
          s.qpClosed = true
          if (codeOf(() => s.qp.close()) !== null) w.fail('closing a queue pair twice threw')
        } else {
          s.qp.setError()
          s.errored = true
        }
        w.down(s)
      },
    })),
    fc.tuple(side, fc.nat(1), seed, fc.integer({ min: 0, max: MANAGER_HEADER }), fc.integer({ min: 0, max: SLOT - MANAGER_HEADER })).map(([i, j, sd, hlen, dlen]) => ({
      label: `side ${i}: manager ${j} sends ${hlen} + ${dlen} bytes (${sd})`,
      act: (w: World) => {
        const s = w.sides[i]
        const m = w.managers[j]
        if (s.out.size >= 24) return
        const header = pattern(hlen, sd)
        const at = sd % (MANAGER_DATA - dlen + 1)
        const bytes = new Uint8Array(hlen + dlen)
        bytes.set(header)
        bytes.set(m.real.data.subarray(at, at + dlen), hlen)
        const wr = newWr(w, s, { kind: 'send', mr: m.mr, slot: 0, len: hlen + dlen, bytes, remoteSlot: -1, manager: m })
        if (m.pending >= m.headers) {
          const code = codeOf(() => m.real.send(s.qp, header, at, dlen, wr.id))
          w.log.push(`${s.name}: manager ${j} send key ${wr.id} with all headers pending -> ${code}`)
          if (code !== 'ERR_ZCIO_NO_BUFFERS') w.fail(`manager ${j} sent with all ${m.headers} headers pending: ${code}`)
          saw('manager out of headers')
          return
        }
        post(w, s, wr, () => m.real.send(s.qp, header, at, dlen, wr.id))
        const keys = m.real.getPendingSends()
        if (keys.length !== m.pending || keys.some((k) => !s.out.has(k) && !w.peer(s).out.has(k))) w.fail(`manager ${j} reports pending keys ${keys}, the model has ${m.pending}`)
      },
    })),
    fc.constant({
      label: 'reconnect: close both queue pairs, connect new ones on the same queues',
      act: (w: World) => {
        if (w.cqs.some((c) => c.closed)) return
        for (const s of w.sides) {
          if (!s.qpClosed) s.qp.close()
          w.down(s)
          // Referenced until their flushed work is back (a collected queue
          // pair is destroyed at once, and its work never reported).
          w.retired.push(s.qp)
        }
        const before = w.sides.map((s) => s.qpn)
        w.connect()
        w.log.push(`reconnect: queue pairs ${before.join(', ')} -> ${w.sides.map((s) => s.qpn).join(', ')}; outstanding ${w.sides.map((s) => s.out.size).join(', ')}`)
        saw('reconnect')
      },
    }),
  ]
}

/** Closes both queue pairs, takes every outstanding completion, then closes everything in order. */
async function finish(w: World): Promise<void> {
  w.log.push('-- finish')
  // While both queue pairs are healthy, let what can complete complete (its
  // data is checked), for up to a second.
  for (let quiet = 0, t0 = Date.now(); !w.broken && quiet < 20 && Date.now() - t0 < 1000; ) {
    const n = w.cqs.reduce((k, cq) => k + pollAll(w, cq), 0)
    quiet = n > 0 ? 0 : quiet + 1
    await new Promise((r) => setTimeout(r, 5))
  }
  for (const s of w.sides) {
    if (!s.qpClosed) {
      s.qp.close()
      s.qpClosed = true
    }
    w.down(s)
  }
  const deadline = Date.now() + 30_000
  while (w.sides.some((s) => s.out.size > 0)) {
    if (w.failed) w.fail(w.failed)
    if (Date.now() > deadline) w.fail(`after 30 s still outstanding: ${w.sides.map((s) => `${s.name}: ${[...s.out.keys()].join(', ')}`).join('; ')}`)
    for (const cq of w.cqs) pollAll(w, cq)
    await new Promise((r) => setTimeout(r, 5))
  }
  checkInUse(w)
  for (const s of w.sides) {
    for (const m of [...s.mrs, s.window]) {
      if (m.real && !m.closed) {
        const code = codeOf(() => m.real!.close())
        if (code) w.fail(`${m.name}.close() at the end threw ${code}`)
      }
    }
  }
  for (const m of w.managers) {
    if (m.real.getPendingSends().length > 0) w.fail(`manager ${m.index} still has pending sends ${m.real.getPendingSends()}`)
    m.real.close()
  }
  for (const cq of w.cqs) {
    const code = codeOf(() => cq.real.close())
    if (code) w.fail(`${cq.name}.close() after its queue pairs drained threw ${code}`)
    cq.closed = true
    if (codeOf(() => cq.real.poll()) !== 'ERR_ZCIO_CLOSED') w.fail('poll() of a closed queue did not throw ERR_ZCIO_CLOSED')
  }
  // Regions dropped without close() may still be pending collection.
  globalThis.gc?.()
  await new Promise((r) => setTimeout(r, 10))
  let code = codeOf(() => w.pd.close())
  for (let i = 0; code === 'ERR_ZCIO_PD_IN_USE' && i < 50; i++) {
    globalThis.gc?.()
    await new Promise((r) => setTimeout(r, 20))
    code = codeOf(() => w.pd.close())
  }
  if (code && !w.sides.some((s) => s.mrs.some((m) => m.real === null))) w.fail(`pd.close() at the end threw ${code}`)
  if (code === null) {
    const c2 = codeOf(() => w.ctx.close())
    if (c2) w.fail(`context.close() at the end threw ${c2}`)
  }
  if (w.failed) w.fail(w.failed)
}

rdmaTest('random sequences of verbs calls agree with the model', async (t) => {
  const seconds = Number((process.env.ZCIO_RDMA_FUZZ_TIME ?? '20').replace(/s$/, ''))
  const seed = Number(process.env.ZCIO_RDMA_FUZZ_SEED ?? Date.now() % 2 ** 31)
  const path = process.env.ZCIO_RDMA_FUZZ_PATH
  const started = Date.now()
  let runs = 0
  let steps = 0
  // Queues of 1 to 8 entries (the device may make a few more) with up to 24
  // requests outstanding per queue pair overflow unless posts are refused.
  const config = fc.record({ cqEntries: fc.constantFrom(1, 2, 3, 8, 256), sharedCq: fc.boolean() })
  const list = fc.array(fc.oneof(...cmds().map((arbitrary, i) => ({ arbitrary, weight: WEIGHTS[i] }))), { minLength: 1, maxLength: 40, size: 'max' })
  const prop = fc.asyncProperty(config, list, async (cfg, list) => {
    runs++
    const w = new World(cfg)
    w.log.push(`config: ${JSON.stringify(cfg)}, capacity ${w.cqs[0].capacity}`)
    try {
      for (const c of list) {
        w.log.push(`# ${c.label}`)
        await c.act(w)
        steps++
        checkInUse(w)
        if (w.failed) w.fail(w.failed)
      }
      await finish(w)
    } catch (e) {
      // Leave nothing for the next run: close what can be closed.
      for (const s of w.sides) {
        try {
          s.qp.close()
        } catch {}
      }
      for (const m of w.managers) {
        try {
          m.real.close()
        } catch {}
      }
      throw e
    }
  })
  const out = await fc.check(prop, {
    seed,
    path,
    numRuns: path ? 1 : 100_000,
    interruptAfterTimeLimit: path ? undefined : seconds * 1000,
    markInterruptAsFailure: false,
    endOnFailure: false,
  })
  t.log([...seen].sort().map(([k, v]) => `${k}: ${v}`).join(', '))
  t.log(`${runs} runs, ${steps} steps in ${((Date.now() - started) / 1000).toFixed(1)} s, seed ${seed}`)
  if (out.failed) {
    t.fail(
      `counterexample after ${out.numRuns} runs (${out.numShrinks} shrinks): ${JSON.stringify(out.counterexample?.[0])} ${JSON.stringify(out.counterexample?.[1]?.map((c: Cmd) => c.label))}\n` +
        `${(out.errorInstance as Error | undefined)?.message ?? String(out.errorInstance)}\n` +
        `replay: ZCIO_RDMA_FUZZ_SEED=${out.seed} ZCIO_RDMA_FUZZ_PATH='${out.counterexamplePath}' npm run test:rdma`,
    )
  } else if (!path) {
    // Not vacuous: data moved and was checked, and closes were refused.
    const whats = ['recv ok', 'send ok', 'rdma-write ok', 'rdma-read ok', 'region close refused', 'recv status 5']
    whats.push('post refused: completion queue full', 'manager send back', 'manager out of headers', 'reconnect', 'completion of an earlier connection')
    for (const what of whats) {
      t.true((seen.get(what) ?? 0) > 0, `no '${what}' in ${runs} runs`)
    }
  } else t.pass()
})
