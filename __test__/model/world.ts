// The world of the model-based test: the real rings, pools, files and pipes,
// and next to each of them what the model says it must look like (the
// model's state is declared in model.ts; how operations complete in ops.ts,
// the checks after each command in checks.ts).

import * as fs from 'node:fs'
import * as path from 'node:path'
import * as checks from './checks.js'
import * as contents from './contents.js'
import {
  type BufM, type FileM, type Op, type PipeM, type PoolM, type RingM, type SimpleTarget, type Target, type Tracked,
  FILE_CAP, KNOWN_ISSUES, ModelError, PIPE_IO_MAX, SETTLE_TIMEOUT_MS, TABLE_SIZE, cover, fail, ioUringFds, show, sleep, thrownCode, tick,
} from './model.js'
import { NetState, checkNet, netPending } from './net-model.js'
import { netCleanup, netFinish } from './net-finish.js'
import * as ops from './ops.js'
import type { Session } from './session.js'

export interface WorldOptions {
  /** Tolerate the library bugs listed in KNOWN_ISSUES (the default). */
  tolerateKnown: boolean
}

export class World {
  readonly session: Session
  readonly options: WorldOptions
  rings: RingM[] = []
  pools: PoolM[] = []
  files: FileM[] = []
  pipes: PipeM[] = []
  zero!: SimpleTarget
  null!: SimpleTarget
  dir!: SimpleTarget
  /** Failures found outside a command (in a promise reaction). */
  failures: string[] = []
  trace: string[] = []
  tracked: Tracked[] = []
  /** The ops of each batch, by op: a batch settles as a whole. */
  batchOf = new Map<Op, Op[]>()
  /** Network rings, groups and streams (net-model.ts). */
  net = new NetState()
  workersStarted = 0
  bigPools = 0
  /**
   * Inside a promise reaction: the driver reaps a whole round before any
   * reaction runs, so other ops of the round are done in the core although
   * their own reactions are still queued.
   */
  reacting = 0
  commands = 0
  private nextId = 0
  private runDir: string
  private closedFds: number[] = []

  constructor(session: Session, options: WorldOptions) {
    this.session = session
    this.options = options
    this.runDir = fs.mkdtempSync(path.join(session.dir, 'run-'))
    for (let k = 0; k < 2; k++) {
      const p = path.join(this.runDir, `file${k}`)
      const size = k === 0 ? 64 * 1024 + 123 : 0
      const data = new Uint8Array(FILE_CAP)
      for (let i = 0; i < size; i++) data[i] = (i * 7 + (i >> 8)) & 0xff
      fs.writeFileSync(p, data.subarray(0, size))
      const known = new Uint8Array(FILE_CAP).fill(1)
      this.files.push({ kind: 'file', name: `file${k}`, fd: fs.openSync(p, 'r+'), path: p, size, sizeKnown: true, data, known, ops: new Set() })
    }
    session.fifos.forEach((f, k) => {
      // Left empty by the previous run (checked by its finish()).
      this.pipes.push({
        kind: 'pipe', name: `pipe${k}`, fd: f.fd, chunks: [], pieces: [], written: 0, read: 0, held: 0,
        sequential: true, opaque: false, lost: false, ops: new Set(),
      })
    })
    this.zero = { kind: 'zero', name: '/dev/zero', fd: fs.openSync('/dev/zero', 'r+') }
    this.null = { kind: 'null', name: '/dev/null', fd: fs.openSync('/dev/null', 'r+') }
    this.dir = { kind: 'dir', name: 'a directory', fd: fs.openSync(this.runDir, 'r') }
  }

  id(): number {
    return this.nextId++
  }

  log(line: string): void {
    this.trace.push(line)
  }

  /** Whether to accept the behaviour of a known bug (it is logged either way). */
  known(issue: string): boolean {
    if (!(issue in KNOWN_ISSUES)) return false // fixed: its behaviour is a failure again
    this.log(`  known issue: ${KNOWN_ISSUES[issue]}`)
    return this.options.tolerateKnown
  }

  /** Records a failure found in a promise reaction; thrown at the next check. */
  asyncFail(e: unknown): void {
    this.failures.push(e instanceof ModelError ? e.message : `unexpected ${e instanceof Error ? e.stack : show(e)}`)
  }

  track<T>(p: Promise<T>, label: string): Tracked {
    const t: Tracked = { label, settled: false }
    this.tracked.push(t)
    const done = () => {
      t.settled = true
    }
    p.then(done, done)
    return t
  }

  liveRings(): RingM[] {
    return this.rings.filter((r) => r.real !== null)
  }

  livePools(): PoolM[] {
    return this.pools.filter((p) => p.real !== null)
  }

  // -------------------------------------------------------------------------
  // Interval reasoning about ops the model has not seen complete

  /** Whether the core still counts `op`: yes, no, or maybe. */
  inCore(op: Op): 'yes' | 'no' | 'maybe' {
    if (op.status !== 'pending') return 'no'
    return op.api === 'promise' && !op.maybe && this.reacting === 0 ? 'yes' : 'maybe'
  }

  bufInFlight(b: BufM): 'yes' | 'no' | 'maybe' {
    if (!b.acquired) return 'no'
    if (b.manual) return 'yes'
    let maybe = false
    for (const op of b.ops) {
      const c = this.inCore(op)
      if (c === 'yes') return 'yes'
      if (c === 'maybe') maybe = true
    }
    return maybe ? 'maybe' : 'no'
  }

  bufKernelOps(b: BufM): 'yes' | 'no' | 'maybe' {
    let maybe = false
    for (const op of b.ops) {
      const c = this.inCore(op)
      if (c === 'yes') return 'yes'
      if (c === 'maybe') maybe = true
    }
    return maybe ? 'maybe' : 'no'
  }

  /** The outcome showed that no op on `b` is left in the core. */
  markReaped(b: BufM): void {
    for (const op of b.ops) if (op.status === 'pending') op.status = 'reaped'
  }


  // -------------------------------------------------------------------------
  // Operations (ops.ts), checks (checks.ts), file and pipe contents (contents.ts)

  newOp(
    api: Op['api'],
    kind: Op['kind'],
    pool: PoolM,
    buf: BufM,
    target: Target,
    pos: number,
    len: number,
    boff: number,
    flood = false,
  ): Op {
    return ops.newOp(this, api, kind, pool, buf, target, pos, len, boff, flood)
  }

  manualMaybeInFlight(r: RingM): boolean {
    return ops.manualMaybeInFlight(this, r)
  }

  floodConflicts(b: BufM, off: number, len: number): void {
    ops.floodConflicts(this, b, off, len)
  }

  ringLoad(r: RingM): number {
    return ops.ringLoad(this, r)
  }

  finishOp(op: Op, res: number, how: string): void {
    ops.finishOp(this, op, res, how)
  }

  loseOp(op: Op): void {
    ops.loseOp(this, op)
  }

  takeManual(r: RingM, list: unknown, how: string): void {
    ops.takeManual(this, r, list, how)
  }

  check(where: string): void {
    checks.check(this, where)
    checkNet(this, where)
  }

  feedPipes(): Promise<void> {
    return contents.feedPipes(this)
  }

  takeAll(): void {
    contents.takeAll(this)
  }

  pipeWriteSync(p: PipeM, len: number, seed: number): number {
    return contents.pipeWriteSync(this, p, len, seed)
  }

  drainPipe(p: PipeM): void {
    contents.drainPipe(this, p)
  }

  checkFiles(): void {
    contents.checkFiles(this)
  }

  // -------------------------------------------------------------------------
  // Waiting

  /** Ops that must complete without any further command. */
  mustSettle(): Op[] {
    const out: Op[] = []
    for (const r of this.rings) {
      for (const op of r.ops) {
        if (op.status === 'done' || !op.observable) continue
        if (op.target.kind === 'pipe' && op.kind === 'read') continue
        // A batch settles as a whole: one pending pipe read holds it.
        out.push(op)
      }
    }
    return out.filter((op) => !(op.api === 'batch' && this.batchBlocked(op)))
  }

  private batchBlocked(op: Op): boolean {
    const all = this.batchOf.get(op)
    return all !== undefined && all.some((o) => o.status !== 'done' && o.target.kind === 'pipe' && o.kind === 'read')
  }

  /** Waits until every op that must complete has been seen completing. */
  async settle(timeoutMs = SETTLE_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (let round = 0; ; round++) {
      this.takeAll()
      if (this.failures.length > 0) return
      const left = [...this.mustSettle().map((o) => o.label), ...netPending(this)]
      if (left.length === 0) return
      if (Date.now() > deadline) {
        fail(`hang: after ${timeoutMs} ms these operations have not completed:\n  ${left.join('\n  ')}`)
      }
      if (round < 50) await tick()
      else await sleep(2)
    }
  }

  async finish(): Promise<void> {
    this.log('-- finish')
    await this.settle()
    await netFinish(this)
    await this.feedPipes()
    await this.settle()
    for (const r of this.rings) {
      if (r.real && !r.closed) this.closeRing(r)
    }
    await tick()
    for (const r of this.rings) {
      if (r.real) this.takeManual(r, r.real.takeCompletions(), `${r.name}.takeCompletions() after close`)
    }
    this.check('finish')
    for (const r of this.rings) {
      for (const op of r.ops) if (op.observable && op.status !== 'done') fail(`finish: ${op.label} never completed`)
    }
    for (const p of this.pipes) this.drainPipe(p)
    this.checkFiles()
    // Every promise handed out settles.
    const deadline = Date.now() + SETTLE_TIMEOUT_MS
    for (;;) {
      const left = this.tracked.filter((t) => !t.settled)
      if (left.length === 0) break
      if (Date.now() > deadline) fail(`hang: these promises never settled:\n  ${left.map((t) => t.label).join('\n  ')}`)
      await sleep(5)
    }
    if (this.failures.length > 0) fail(this.failures.join('\n'))
  }

  /** Releases what the run holds, whatever state a failure left it in. */
  async cleanup(): Promise<void> {
    try {
      // Pending pipe reads would keep the process alive: feed them.
      for (let round = 0; round < 20; round++) {
        let pending = false
        for (const p of this.pipes) {
          if ([...p.ops].some((o) => o.kind === 'read' && o.status === 'pending')) {
            pending = true
            try {
              fs.writeSync(p.fd, Buffer.alloc(PIPE_IO_MAX, 1))
            } catch {
              // Full: the reads have data.
            }
          }
        }
        for (const r of this.rings) {
          try {
            r.real?.close()
          } catch {
            // Reported by the run already.
          }
        }
        if (!pending) break
        await sleep(5)
      }
      await tick()
      for (const p of this.pipes) {
        const scratch = Buffer.alloc(65536)
        try {
          while (fs.readSync(p.fd, scratch) > 0);
        } catch {
          // EAGAIN: empty.
        }
      }
    } finally {
      netCleanup(this)
      for (const f of this.files) fs.closeSync(f.fd)
      for (const t of [this.zero, this.null, this.dir]) fs.closeSync(t.fd)
      fs.rmSync(this.runDir, { recursive: true, force: true })
      for (const r of this.rings) r.real = null
      for (const p of this.pools) p.real = null
      this.rings = []
      this.pools = []
    }
  }

  /**
   * After a run nothing holds its rings and pools: once collected, the rings
   * that were dropped without close() must be gone too (their driver closes
   * them when the last JS object goes and nothing is in flight).
   */
  async checkReleased(): Promise<void> {
    if (!this.session.hasGc) return
    for (let k = 0; k < 50; k++) {
      if (ioUringFds() <= this.session.ringFds) return
      globalThis.gc!()
      await tick()
      await sleep(k < 10 ? 1 : 10)
    }
    const n = ioUringFds() - this.session.ringFds
    fail(`${n} io_uring instance(s) still open after the run, with every ring and pool dropped and collected`)
  }

  // -------------------------------------------------------------------------
  // Actions shared by commands

  closeRing(r: RingM): void {
    const ring = r.real!
    const live = [...r.ops].filter((o) => o.status === 'pending').length
    cover(live > 0 ? 'ring closed with ops in flight' : 'ring closed idle')
    for (const op of r.ops) {
      if (op.status === 'pending') {
        op.status = 'reaped'
        op.cancelable = true
      }
    }
    const res = thrownCode(() => ring.close())
    if (res.threw) fail(`${r.name}.close() threw ${res.code}: ${(res.error as Error).message}`)
    this.log(`${r.name}.close()`)
    r.closed = true
    r.table = []
    for (const p of r.pools) if (!p.closed) p.base = null
  }

  /** A fd number that is not open now (checked), for EBADF. */
  unusedFd(v: number): number {
    for (let k = 0; k < 100; k++) {
      const fd = 19000 + ((v + k) % 900)
      try {
        fs.fstatSync(fd)
      } catch {
        return fd
      }
    }
    return 2 ** 31 - 1
  }

  /** Opens and closes a file, returning the fd number it had. */
  closedFd(): number {
    const fd = fs.openSync(path.join(this.runDir, 'closed'), 'w')
    fs.closeSync(fd)
    this.closedFds.push(fd)
    return fd
  }

  tableAlloc(r: RingM, count: number): { certain: boolean; fits: boolean; base: number | null } {
    if (r.table === null) return { certain: false, fits: true, base: null }
    const firstFit = (ranges: { start: number; len: number }[]) => {
      let start = 0
      for (const g of [...ranges].sort((a, b) => a.start - b.start)) {
        if (g.start - start >= count) return start
        start = g.start + g.len
      }
      return TABLE_SIZE - start >= count ? start : null
    }
    const all = firstFit(r.table)
    const some = firstFit(r.table.filter((g) => !g.maybeFreed))
    if (all !== null && all === some) return { certain: true, fits: true, base: all }
    if (some === null) return { certain: true, fits: false, base: null }
    return { certain: false, fits: all !== null, base: null }
  }
}
