// The model of the randomized RDMA test (rdma-model.spec.ts): the world it
// drives (a context, a domain, completion queues, two connected sides, the
// managers), what each side has outstanding, and how a completion or a post
// is checked against it.

import { zcio } from './support.js'

const { rdma } = zcio
export type Ctx = ReturnType<typeof rdma.open>
export type Pd = ReturnType<Ctx['allocPd']>
export type Cq = ReturnType<Ctx['createCq']>
export type Mr = ReturnType<Pd['allocate']>
export type Qp = ReturnType<ReturnType<Pd['createQp']>['handshake']>
export type Wc = ReturnType<Cq['poll']>[number]
export type Manager = InstanceType<typeof zcio.ZeroCopyBufferManager>

/** Bytes per message slot: receives are this long, sends at most this long. */
export const SLOT = 256
/** Slots of each side's remote window (the target of WRITE and READ). */
export const WINDOW_SLOTS = 8
export const FLUSH = 5
/** wrIds from here are the managers'. */
export const RESERVED = 2 ** 52
export const MANAGER_DATA = 4096
export const MANAGER_HEADER = 16

/** Per run: completion queue size, and whether both queue pairs share one queue. */
export interface Config {
  cqEntries: number
  sharedCq: boolean
}

export interface CqM {
  name: string
  real: Cq
  capacity: number
  closed: boolean
  waits: number
}

/** One connection: the two queue pairs made together (a reconnect makes a new one). */
export interface Conn {
  id: number
  /** A queue pair of it was closed or forced into error: its work may fail. */
  broken: boolean
  /** Per side: its queue pair is closed or in error (receives come back flushed). */
  down: [boolean, boolean]
  /** Per side: sends (successful to be) not yet matched with a peer's receive, in post order. */
  sends: [WrM[], WrM[]]
}

export interface MgrM {
  index: number
  real: Manager
  headers: number
  /** Its sends outstanding (model ids = keys). */
  pending: number
  /** Stands in for its regions in the work request model. */
  mr: MrM
}

export interface MrM {
  name: string
  real: Mr | null
  slots: number
  busy: boolean[]
  /** Work requests that hold it (the model's count of `mr.inUse`). */
  holds: number
  closed: boolean
}

export interface WrM {
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

export interface Side {
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

export class World {
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

export function pattern(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len)
  let x = seed * 2654435761 + 1
  for (let i = 0; i < len; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    out[i] = x >>> 24
  }
  return out
}

export function codeOf(f: () => unknown): string | null {
  try {
    f()
    return null
  } catch (e) {
    return (e as { code?: string }).code ?? 'no code'
  }
}

export function checkInUse(w: World): void {
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
export function modelId(w: World, wc: Wc): number {
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
export function complete(w: World, cq: CqM, wc: Wc): void {
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
export const seen = new Map<string, number>()
export function saw(what: string): void {
  seen.set(what, (seen.get(what) ?? 0) + 1)
}

export function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

export function pollAll(w: World, cq: CqM): number {
  if (cq.closed) return 0
  let n = 0
  for (;;) {
    const got = cq.real.poll(16)
    for (const wc of got) complete(w, cq, wc)
    n += got.length
    if (got.length < 16) return n
  }
}

export function freeSlot(busy: boolean[], seed: number): number {
  const free = busy.map((b, i) => (b ? -1 : i)).filter((i) => i >= 0)
  return free.length === 0 ? -1 : free[seed % free.length]
}

/** A local region and slot for a new work request, or null. */
export function pick(s: Side, seed: number): { mr: MrM; slot: number } | null {
  const open = s.mrs.filter((m) => !m.closed && m.busy.some((b) => !b))
  if (open.length === 0) return null
  const mr = open[seed % open.length]
  return { mr, slot: freeSlot(mr.busy, seed >> 3) }
}

export type Act = (w: World) => void | Promise<void>
export interface Cmd {
  label: string
  act: Act
}

/** A new work request's model, on `s`'s current queue pair. */
export function newWr(w: World, s: Side, fields: Omit<WrM, 'id' | 'side' | 'conn' | 'qpn'>): WrM {
  return { id: w.nextId++, side: s, conn: w.conn, qpn: s.qpn, ...fields }
}

export function post(w: World, s: Side, wr: WrM, call: () => void): void {
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
  posted(s, wr)
}

/** Takes a posted work request into the model. */
export function posted(s: Side, wr: WrM): void {
  wr.mr.holds++
  wr.mr.busy[wr.slot] = true
  s.out.set(wr.id, wr)
  if (wr.kind === 'recv') s.recvs.push(wr)
  if (wr.kind === 'send') wr.conn.sends[s.index].push(wr)
  if (wr.manager) wr.manager.pending++
}

/** Relative weights of `cmds()`, in order: posts and polls often, closes and errors now and then. */
