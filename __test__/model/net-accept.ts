// Commands: listeners and what accepting meets in a busy server. Listeners
// (TCP and Unix, small ready queues, maxConnections) on the network rings;
// bursts of connects with few accept() calls (a slow application); closes of
// accepted streams; and descriptor starvation: the process's descriptors are
// used up (the soft limit lowered first with prlimit where it exists) while
// connects and accepts happen, then freed.
//
// What must hold: the ready queue never exceeds its limit; the open-connection
// count is what the program holds plus the ready queue, never above
// maxConnections; nothing is dropped without maxConnections; accept errors
// happen only while descriptors are short, and the listener accepts again
// afterwards; a waiting accept() is answered whenever a connection is left
// in the kernel's queue; accepted and connected TCP streams have TCP_NODELAY.

import fc from 'fast-check'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { createRequire } from 'node:module'
import { Cmd } from './cmd.js'
import { setSoftLimit, softLimit, startLimitHelper } from './fd-limit.js'
import { checkErrorShape, cover, fail, root, sleep, tick, zcio } from './model.js'
import { type NetRingM, type Stream, openNetRings } from './net-model.js'
import { addNetRing } from './net-life.js'
import type { World } from './world.js'

type Listener = import('../../index.js').TcpListener
type InetAddress = import('../../index.js').InetAddress
const { streamNative } = createRequire(import.meta.url)(`${root}/lib/stream.js`) as typeof import('../../lib/stream.js')

const MAX_LISTENERS = 2
/** Connects per listener at most; the kernel's backlog is larger, so every connect completes at once. */
const MAX_CONNECTS = 40
const BACKLOG = 64
const PROGRESS_TIMEOUT_MS = 5000
/** Unix socket paths are new for every listener of the session. */
let socketSeq = 0

interface ListenerM {
  name: string
  ring: NetRingM
  real: Listener
  unix: boolean
  to: { port: number } | { path: string }
  readyLimit: number
  maxConnections: number
  closed: boolean
  /** Accepted streams the program holds (open). */
  taken: Stream[]
  clients: Stream[]
  /** Client connects that succeeded. */
  connected: number
  /** Streams accept() has given (closed ones included). */
  accepted: number
  /** accept() calls not yet answered. */
  waiting: number
  /** Descriptors ran short while it listened (accept errors are then allowed). */
  starved: boolean
}

const states = new WeakMap<World, ListenerM[]>()
const listenersOf = (w: World): ListenerM[] => {
  let l = states.get(w)
  if (!l) states.set(w, (l = []))
  return l
}
const open = (w: World) => listenersOf(w).filter((l) => !l.closed && !l.ring.closed)

function checkStream(s: Stream, unix: boolean, what: string): void {
  const nd = streamNative(s).noDelay
  if (nd !== !unix) fail(`${what}: TCP_NODELAY is ${nd}, expected ${!unix}`)
}

/** The listener's counts against the model. */
function checkListener(w: World, l: ListenerM, where: string): void {
  if (l.closed || l.ring.closed) {
    if (!l.real.closed) fail(`${where}: ${l.name}.closed is false`)
    return
  }
  const r = l.real
  if (r.readyCount > l.readyLimit) fail(`${where}: ${l.name}.readyCount is ${r.readyCount}, above readyLimit ${l.readyLimit}`)
  const held = l.taken.length
  if (r.connectionCount !== held + r.readyCount) {
    fail(`${where}: ${l.name}.connectionCount is ${r.connectionCount}; the program holds ${held} and ${r.readyCount} are ready`)
  }
  if (r.connectionCount > l.maxConnections) fail(`${where}: ${l.name} has ${r.connectionCount} connections, maxConnections is ${l.maxConnections}`)
  if (l.maxConnections === Infinity && r.droppedCount !== 0) fail(`${where}: ${l.name} dropped ${r.droppedCount} connections without maxConnections`)
  if (l.accepted + r.readyCount + r.droppedCount > l.connected) {
    fail(`${where}: ${l.name} accepted ${l.accepted} + ready ${r.readyCount} + dropped ${r.droppedCount}, but only ${l.connected} connected`)
  }
  if (r.errorCount > 0 && !l.starved) fail(`${where}: ${l.name}.errorCount is ${r.errorCount} (${r.lastError?.code}) with descriptors to spare`)
  if (r.lastError && !['EMFILE', 'ENFILE'].includes(r.lastError.code)) fail(`${where}: ${l.name}.lastError is ${r.lastError.code}`)
}

/** Waits until every waiting accept() is answered or no connection is left to answer it with. */
async function progress(w: World, l: ListenerM, where: string): Promise<void> {
  const deadline = Date.now() + PROGRESS_TIMEOUT_MS
  for (;;) {
    const left = l.connected - l.accepted - l.real.droppedCount
    if (l.waiting === 0 || left === 0 || l.closed || l.ring.closed) break
    if (Date.now() > deadline) {
      fail(`${where}: ${l.name}: ${l.waiting} accept() waiting, ${left} connections left in the kernel's queue (ready ${l.real.readyCount}, errors ${l.real.errorCount}), nothing came in ${PROGRESS_TIMEOUT_MS} ms`)
    }
    await sleep(2)
  }
  checkListener(w, l, where)
}

class NewListener extends Cmd {
  constructor(readonly ring: number, readonly unix: boolean, readonly readyLimit: number | undefined, readonly maxConnections: number) {
    super()
  }
  act(w: World) {
    const ls = listenersOf(w)
    if (open(w).length >= MAX_LISTENERS) return
    const rings = openNetRings(w)
    const r = rings.length > 0 ? rings[this.ring % rings.length] : addNetRing(w, 64, 4096)
    if (!r) return
    const sock = path.join(w.session.dir, `listen-${process.pid}-${socketSeq++}`)
    const opts = {
      ...(this.unix ? { path: sock } : { port: 0 }),
      backlog: BACKLOG,
      ...(this.readyLimit === undefined ? {} : { readyLimit: this.readyLimit }),
      ...(this.maxConnections === Infinity ? {} : { maxConnections: this.maxConnections }),
    }
    const real = zcio.TcpListener.bind(r.real!, opts)
    const l: ListenerM = {
      name: `listener${ls.length}`, ring: r, real, unix: this.unix, to: this.unix ? { path: sock } : { port: (real.address as InetAddress).port },
      readyLimit: this.readyLimit ?? BACKLOG, maxConnections: this.maxConnections, closed: false,
      taken: [], clients: [], connected: 0, accepted: 0, waiting: 0, starved: false,
    }
    ls.push(l)
    w.log(`  ${l.name} = TcpListener.bind(${r.name}, ${JSON.stringify(opts)})`)
    cover(`listener (${this.unix ? 'Unix' : 'TCP'}${this.maxConnections !== Infinity ? ', maxConnections' : ''})`)
  }
  toString() {
    return `listener (ring #${this.ring}, ${this.unix ? 'Unix' : 'TCP'}, readyLimit ${this.readyLimit}, maxConnections ${this.maxConnections})`
  }
}

abstract class ListenerCmd extends Cmd {
  constructor(readonly listener: number) {
    super()
  }
  check(w: World) {
    void w
    return true
  }
  async act(w: World) {
    const ls = open(w)
    if (ls.length === 0) return
    const l = ls[this.listener % ls.length]
    await this.on(w, l)
    checkListener(w, l, `after ${this}`)
  }
  protected abstract on(w: World, l: ListenerM): Promise<void>
}

/** `n` connects; resolves once all are settled. */
async function connect(w: World, l: ListenerM, n: number, starved: boolean): Promise<void> {
  n = Math.min(n, MAX_CONNECTS - l.connected)
  const ps: Promise<void>[] = []
  for (let i = 0; i < n; i++) {
    const p = zcio.TcpStream.connect(l.ring.real!, l.to)
    w.track(p, `${l.name} connect`)
    ps.push(
      p.then(
        (s) => {
          l.connected++
          l.clients.push(s)
          checkStream(s, l.unix, `a client of ${l.name}`)
        },
        (e: { code?: string }) => {
          if (l.ring.closed) return
          if (starved && (e.code === 'EMFILE' || e.code === 'ENFILE')) {
            checkErrorShape(e, e.code, `connect to ${l.name} without descriptors`)
            cover('connect failed with EMFILE')
            return
          }
          w.asyncFail(new Error(`connect to ${l.name} failed: ${e.code}`))
        },
      ),
    )
  }
  await Promise.all(ps)
  w.log(`  ${n} connects to ${l.name}: ${l.connected} connected in all`)
}

/** `k` accept() calls; the answers go to the program's streams. */
function accept(w: World, l: ListenerM, k: number): void {
  for (let i = 0; i < k; i++) {
    l.waiting++
    const p = l.real.accept()
    w.track(p, `${l.name}.accept()`)
    p.then(
      (s) => {
        l.waiting--
        if (s === null) {
          if (!l.closed && !l.ring.closed) w.asyncFail(new Error(`${l.name}.accept() gave null while open`))
          return
        }
        l.accepted++
        if (l.closed || l.ring.closed) {
          void s.close()
          return
        }
        l.taken.push(s)
        checkStream(s, l.unix, `a stream accepted by ${l.name}`)
        cover('connection accepted')
      },
      (e) => {
        l.waiting--
        w.asyncFail(new Error(`${l.name}.accept() rejected with ${(e as { code?: string }).code}`))
      },
    )
  }
  w.log(`  ${k} x ${l.name}.accept()`)
}

/** A slow application: many connects, few accepts. */
class Connects extends ListenerCmd {
  constructor(listener: number, readonly n: number, readonly k: number) {
    super(listener)
  }
  async on(w: World, l: ListenerM) {
    await connect(w, l, this.n, false)
    accept(w, l, this.k)
    await tick()
    await progress(w, l, `${this}`)
    if (l.real.readyCount === l.readyLimit && l.readyLimit > 0) cover('ready queue full')
    if (l.real.droppedCount > 0) cover('connections dropped over maxConnections')
  }
  toString() {
    return `${this.n} connects, ${this.k} accepts (listener #${this.listener})`
  }
}

class CloseTaken extends ListenerCmd {
  constructor(listener: number, readonly k: number, readonly clients: boolean) {
    super(listener)
  }
  async on(w: World, l: ListenerM) {
    const list = this.clients ? l.clients : l.taken
    const gone = list.splice(0, this.k)
    await Promise.all(gone.map((s) => s.close()))
    w.log(`  closed ${gone.length} ${this.clients ? 'clients' : 'accepted streams'} of ${l.name}`)
    await progress(w, l, `${this}`)
  }
  toString() {
    return `close ${this.k} ${this.clients ? 'clients' : 'accepted streams'} (listener #${this.listener})`
  }
}

class CloseListener extends ListenerCmd {
  async on(w: World, l: ListenerM) {
    l.real.close()
    l.closed = true
    w.log(`  ${l.name}.close()`)
    const after = await l.real.accept()
    if (after !== null) fail(`${l.name}.accept() after close() gave a stream`)
    await until(() => l.waiting === 0, `${l.name}'s waiting accepts to get null`)
    for (const s of [...l.taken, ...l.clients]) void s.close()
    l.taken = []
    l.clients = []
  }
  toString() {
    return `listener #${this.listener}.close()`
  }
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + PROGRESS_TIMEOUT_MS
  while (!cond()) {
    if (Date.now() > deadline) fail(`hang: ${what}`)
    await sleep(2)
  }
}

let prlimitWorks: boolean | undefined

/**
 * Descriptor starvation: `before` connects, then the descriptors run out
 * (`free` of them left), `after` connects and `k` accepts happen for `ms`,
 * then everything is freed and the listener must accept again.
 */
class Starve extends ListenerCmd {
  constructor(listener: number, readonly before: number, readonly after: number, readonly k: number, readonly free: number, readonly ms: number) {
    super(listener)
  }
  async on(w: World, l: ListenerM) {
    await connect(w, l, this.before, false)
    const soft = softLimit()
    const maxFd = Math.max(...fs.readdirSync('/proc/self/fd').map(Number))
    startLimitHelper()
    prlimitWorks ??= await setSoftLimit(soft)
    const lowered = prlimitWorks && (await setSoftLimit(maxFd + 4))
    const dummies: number[] = []
    for (const ll of open(w)) ll.starved = true
    try {
      try {
        for (;;) dummies.push(fs.openSync('/dev/null', 'r'))
      } catch (e) {
        if ((e as { code?: string }).code !== 'EMFILE') throw e
      }
      for (const fd of dummies.splice(0, this.free)) fs.closeSync(fd)
      w.log(`  descriptors used up (${lowered ? `soft limit lowered to ${maxFd + 4}` : `at the limit ${soft}`}, ${this.free} left)`)
      const errors = l.real.errorCount
      const connecting = connect(w, l, this.after, true)
      accept(w, l, this.k)
      await sleep(this.ms)
      await connecting
      if (l.real.errorCount > errors) cover('accept failed for want of descriptors')
    } finally {
      for (const fd of dummies) fs.closeSync(fd)
      // Accepts that were waiting may take the freed descriptors up to the
      // lowered limit at once; the helper raises it without a new one here.
      if (lowered && !(await setSoftLimit(soft))) fail(`could not raise the soft descriptor limit back to ${soft}`)
    }
    w.log(`  descriptors freed`)
    await progress(w, l, `${this}`)
  }
  toString() {
    return `starve descriptors: ${this.before} connects, then ${this.after} connects and ${this.k} accepts with ${this.free} descriptors left for ${this.ms} ms (listener #${this.listener})`
  }
}

export const acceptCmd = fc.oneof(
  {
    weight: 2,
    arbitrary: fc
      .record({
        r: fc.nat(1023),
        u: fc.nat(4).map((x) => x === 0),
        q: fc.constantFrom(undefined, 0, 1, 2, 5),
        m: fc.constantFrom(Infinity, Infinity, 1, 3),
      })
      .map(({ r, u, q, m }) => new NewListener(r, u, q, m)),
  },
  { weight: 4, arbitrary: fc.record({ l: fc.nat(7), n: fc.constantFrom(0, 1, 3, 12), k: fc.constantFrom(0, 1, 1, 2, 8) }).map(({ l, n, k }) => new Connects(l, n, k)) },
  { weight: 2, arbitrary: fc.record({ l: fc.nat(7), k: fc.constantFrom(1, 2, 10), c: fc.boolean() }).map(({ l, k, c }) => new CloseTaken(l, k, c)) },
  {
    weight: 1,
    arbitrary: fc
      .record({ l: fc.nat(7), b: fc.constantFrom(0, 2, 12), a: fc.constantFrom(0, 1, 3), k: fc.constantFrom(1, 2, 9), f: fc.constantFrom(0, 0, 1), ms: fc.constantFrom(5, 30) })
      .map(({ l, b, a, k, f, ms }) => new Starve(l, b, a, k, f, ms)),
  },
  { weight: 1, arbitrary: fc.nat(7).map((l) => new CloseListener(l)) },
)
