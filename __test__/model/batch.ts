// Commands: readFixedBatch/writeFixedBatch (valid and faulty), and the
// argument errors of every single-operation method.

import fc from 'fast-check'
import { ensureAcquired, type IndexMethod } from './buffers.js'
import { type Bad, type BufSel, Cmd, badNumbers, bufSel, livePools, pickOf, pickPool } from './cmd.js'
import { ModelError, checkErrorShape, fail, show, thrownCode } from './model.js'
import { type LenSel, type PosSel, type TargetSel, lenSel, opError, posSel, resolveIo, roomFor, targetSel } from './targets.js'
import type { World } from './world.js'

interface BatchElem {
  buf: BufSel
  pos: PosSel
  len: LenSel
}

type BatchFault = 'none' | 'tooMany' | 'indicesType' | 'positionsType' | 'lengthsType' | 'fd' | 'mismatch' | 'empty' | 'position'

class Batch extends Cmd {
  constructor(
    readonly pool: number,
    readonly write: boolean,
    readonly target: TargetSel,
    readonly elems: BatchElem[],
    readonly fault: BatchFault,
    readonly badFd: Bad,
  ) {
    super()
  }
  check(w: World) {
    return livePools(w).length > 0
  }
  act(w: World) {
    const p = pickPool(w, this.pool)
    const pool = p.real!
    const kind = this.write ? 'write' : 'read'
    ensureAcquired(w, p, this.elems[0].buf)
    const xs = this.elems.map((e) =>
      resolveIo(w, p, { buf: e.buf, target: this.target, pos: e.pos, len: e.len, boff: { mode: 'zero', v: 0 }, write: this.write }, false),
    )
    const target = xs[0].target
    let fd: unknown = target.fd
    let indices: unknown = Uint32Array.from(xs.map((x) => x.index))
    let positions: unknown = Float64Array.from(xs.map((x) => x.pos))
    let lengths: unknown = Uint32Array.from(xs.map((x) => x.len))
    // The error the batch must reject with, in the order the checks run.
    let error: string | null = null
    switch (this.fault) {
      case 'indicesType':
        indices = Array.from(indices as Uint32Array)
        error = 'ERR_INVALID_ARG_TYPE'
        break
      case 'positionsType':
        positions = Float32Array.from(positions as Float64Array)
        error = 'ERR_INVALID_ARG_TYPE'
        break
      case 'lengthsType':
        lengths = Uint8Array.from(lengths as Uint32Array)
        error = 'ERR_INVALID_ARG_TYPE'
        break
      case 'fd':
        fd = this.badFd.value
        error = this.badFd.code
        break
      case 'mismatch':
        lengths = Uint32Array.from([...(lengths as Uint32Array), 1])
        error = 'ERR_INVALID_ARG_VALUE'
        break
      case 'empty':
        indices = new Uint32Array(0)
        positions = new Float64Array(0)
        lengths = new Uint32Array(0)
        error = 'ERR_INVALID_ARG_VALUE'
        break
      case 'tooMany':
        // At most 16384 elements per call.
        indices = new Uint32Array(16385).fill(xs[0].index)
        positions = new Float64Array(16385)
        lengths = new Uint32Array(16385).fill(1)
        error = 'ERR_OUT_OF_RANGE'
        break
      case 'position':
        ;(positions as Float64Array)[0] = [0.5, -1, Number.NaN, 2 ** 53][this.elems[0].pos.v % 4]
        error = 'ERR_OUT_OF_RANGE'
        break
      case 'none':
        for (const x of xs) {
          error = opError(p, x.index, x.len, 0)
          if (error) break
        }
        break
    }
    const method = this.write ? 'writeFixedBatch' : 'readFixedBatch'
    const what = `${p.name}.${method}(${target.name} = ${show(fd)}, ${show(indices)}, ${show(positions)}, ${show(lengths)})`
    if (error === null && !roomFor(w, p, xs.map((x) => ({ target: x.target, len: x.len, write: this.write })))) {
      w.log(`  (no room for ${what}: skipped)`)
      return
    }
    w.log(`  ${what}`)
    let promise: Promise<Int32Array>
    try {
      promise = (pool[method] as (...a: unknown[]) => Promise<Int32Array>).call(pool, fd, indices, positions, lengths)
    } catch (e) {
      fail(`${what} threw synchronously (${(e as { code?: string }).code}); promise methods must reject`)
    }
    if (!(promise instanceof Promise)) fail(`${what} returned ${show(promise)}, not a promise`)
    if (error !== null) {
      const code = error
      w.track(promise, what)
      promise.then(
        () => w.asyncFail(new ModelError(`${what} resolved; expected a rejection with ${code}`)),
        (e) => {
          try {
            checkErrorShape(e, code, what)
          } catch (err) {
            w.asyncFail(err)
          }
        },
      )
      return
    }
    const ops = xs.map((x) => w.newOp('batch', kind, p, p.bufs[x.index], x.target, x.pos, x.len, 0))
    for (const op of ops) w.batchOf.set(op, ops)
    w.log(`    = [${ops.map((o) => `op${o.id}`).join(', ')}]`)
    w.track(promise, `${what} (${ops.map((o) => `op${o.id}`).join(', ')})`)
    promise.then(
      (res) => {
        try {
          if (!(res instanceof Int32Array) || res.length !== ops.length) fail(`${what} resolved with ${show(res)}`)
          ops.forEach((op, k) => w.finishOp(op, res[k], 'batch'))
        } catch (err) {
          w.asyncFail(err)
        }
      },
      (e) => w.asyncFail(new ModelError(`${what} rejected with ${(e as { code?: string }).code}: ${(e as Error).message}`)),
    )
  }
  toString() {
    const e = this.elems.map((x) => `{buf ${x.buf.any ? 'index' : 'acquired'} #${x.buf.v}, pos ${x.pos.mode} ${x.pos.v}, len ${x.len.mode} ${x.len.v}}`)
    return `${this.write ? 'writeFixedBatch' : 'readFixedBatch'}(pool #${this.pool}, ${this.target}, [${e.join(', ')}]${this.fault !== 'none' ? `, fault ${this.fault}${this.fault === 'fd' ? ` ${this.badFd.label}` : ''}` : ''})`
  }
}

const batchElem = fc.record({ buf: bufSel, pos: posSel, len: lenSel })
export const batch = fc
  .record({
    p: fc.nat(1023),
    w: fc.boolean(),
    t: targetSel,
    e: fc.array(batchElem, { minLength: 1, maxLength: 6 }),
    f: fc.oneof(
      { weight: 12, arbitrary: fc.constant<BatchFault>('none') },
      { weight: 1, arbitrary: fc.constantFrom<BatchFault>('tooMany', 'indicesType', 'positionsType', 'lengthsType', 'fd', 'mismatch', 'empty', 'position') },
    ),
    bad: fc.constantFrom(...badNumbers(2 ** 31 - 1)),
  })
  .map(({ p, w, t, e, f, bad }) => new Batch(p, w, t, e, f, bad))

// ---------------------------------------------------------------------------
// Argument errors of single-op methods

type OpMethod = 'readFixed' | 'writeFixed' | 'submitReadFixed' | 'submitWriteFixed'
const ARG_MAX = { fd: 2 ** 31 - 1, index: 2 ** 32 - 1, position: Number.MAX_SAFE_INTEGER, length: 2 ** 32 - 1, bufferOffset: 2 ** 32 - 1 }
type ArgName = keyof typeof ARG_MAX

class BadArgs extends Cmd {
  constructor(readonly pool: number, readonly method: OpMethod | IndexMethod, readonly arg: ArgName, readonly bad: number) {
    super()
  }
  check(w: World) {
    return livePools(w).length > 0
  }
  act(w: World) {
    const p = pickPool(w, this.pool)
    const pool = p.real!
    const indexOnly = ['release', 'get', 'markInFlight', 'completeInFlight'].includes(this.method)
    const arg: ArgName = indexOnly ? 'index' : this.arg
    const bads = badNumbers(ARG_MAX[arg]).filter((b) => !(arg === 'bufferOffset' && b.value === undefined))
    const bad = pickOf(bads, this.bad)
    const acquired = [...p.acquired]
    const args: unknown[] = indexOnly ? [0] : [w.files[0].fd, acquired[0] ?? 0, 0, 1, undefined]
    args[indexOnly ? 0 : ['fd', 'index', 'position', 'length', 'bufferOffset'].indexOf(arg)] = bad.value
    const what = `${p.name}.${this.method}(${args.map(show).join(', ')})`
    w.log(`  ${what}`)
    if (this.method === 'readFixed' || this.method === 'writeFixed') {
      let promise: unknown
      try {
        promise = (pool[this.method] as (...a: unknown[]) => unknown).apply(pool, args)
      } catch (e) {
        fail(`${what} threw synchronously (${(e as { code?: string }).code}); promise methods must reject`)
      }
      if (!(promise instanceof Promise)) fail(`${what} returned ${show(promise)}, not a promise`)
      w.track(promise, what)
      promise.then(
        () => w.asyncFail(new ModelError(`${what} resolved; expected a rejection with ${bad.code}`)),
        (e) => {
          try {
            checkErrorShape(e, bad.code, what)
          } catch (err) {
            w.asyncFail(err)
          }
        },
      )
    } else {
      const res = thrownCode(() => (pool[this.method] as (...a: unknown[]) => unknown).apply(pool, args))
      if (!res.threw) fail(`${what} did not throw; expected ${bad.code}`)
      checkErrorShape(res.error, bad.code, what)
    }
  }
  toString() {
    return `badArgs(pool #${this.pool}, ${this.method}, ${this.arg}, bad #${this.bad})`
  }
}

export const badArgs = fc
  .record({
    p: fc.nat(1023),
    m: fc.constantFrom<OpMethod | IndexMethod>('readFixed', 'writeFixed', 'submitReadFixed', 'submitWriteFixed', 'release', 'get', 'markInFlight', 'completeInFlight'),
    a: fc.constantFrom<ArgName>('fd', 'index', 'position', 'length', 'bufferOffset'),
    b: fc.nat(63),
  })
  .map(({ p, m, a, b }) => new BadArgs(p, m, a, b))

