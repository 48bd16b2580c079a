// Operations in the model: what a new operation conflicts with, and what its
// completion must be (the bytes a read gives, a write leaves, an error code).

import {
  type BufM, type Completion, type FileM, type Op, type PipeM, type PoolM, type RingM, type Target,
  ECANCELED, EBADF, EINTR, EISDIR, cover, errName, fail, overlap, show,
} from './model.js'
import type { World } from './world.js'

export function newOp(
  w: World,
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
  const op: Op = {
    id: w.id(), kind, api, ring: pool.ring, pool, buf, view: buf.view, target, pos, len, boff,
    status: 'pending', observable: true, cancelable: false, src: null, srcKnown: null,
    bufConflict: null, fileConflict: null, ambiguous: false, maybe: flood, flood, userData: null, result: null,
    label: '',
  }
  op.label = `op${op.id} (${api} ${kind} ${pool.name}[${buf.index}] ${target.name} pos ${pos} len ${len} boff ${boff})`
  if (kind === 'write') {
    op.src = buf.data.slice(boff, boff + len)
    op.srcKnown = buf.known.slice(boff, boff + len)
  } else {
    op.bufConflict = new Uint8Array(len)
  }
  if (flood) {
    // floodConflicts() made every byte involved unknown already.
    if (kind === 'read') op.bufConflict!.fill(1)
    else op.srcKnown!.fill(0)
  }
  // Buffer bytes touched concurrently.
  for (const o of flood ? [] : buf.ops) {
    if (o.status === 'done') continue
    const ov = overlap(boff, len, o.boff, o.len)
    if (!ov) continue
    if (kind === 'read' && o.kind === 'read') {
      op.bufConflict!.fill(1, ov[0] - boff, ov[1] - boff)
      o.bufConflict!.fill(1, ov[0] - o.boff, ov[1] - o.boff)
    } else if (kind === 'read' && o.kind === 'write') {
      o.srcKnown!.fill(0, ov[0] - o.boff, ov[1] - o.boff)
    } else if (kind === 'write' && o.kind === 'read') {
      op.srcKnown!.fill(0, ov[0] - boff, ov[1] - boff)
    }
  }
  // File bytes touched concurrently.
  if (target.kind === 'file') {
    if (kind === 'write') op.fileConflict = new Uint8Array(len)
    for (const o of target.ops) {
      if (o.status === 'done') continue
      if (kind === 'write' && o.kind === 'write') {
        const ov = overlap(pos, len, o.pos, o.len)
        if (ov) {
          op.fileConflict!.fill(1, ov[0] - pos, ov[1] - pos)
          o.fileConflict!.fill(1, ov[0] - o.pos, ov[1] - o.pos)
        }
      } else if (kind === 'read' && o.kind === 'write') {
        if (o.pos + o.len > pos) op.ambiguous = true
      } else if (kind === 'write' && o.kind === 'read') {
        if (pos + len > o.pos) o.ambiguous = true
      }
    }
    target.ops.add(op)
  }
  if (target.kind === 'pipe') {
    let reads = 0
    let writes = 0
    for (const o of target.ops) if (o.status !== 'done') o.kind === 'read' ? reads++ : writes++
    if ((kind === 'read' && reads > 0) || (kind === 'write' && writes > 0)) target.sequential = false
    if (kind === 'write') target.held += len
    target.ops.add(op)
  }
  buf.ops.add(op)
  pool.ring.ops.add(op)
  pool.submitted++
  return op
}

/** Whether a low-level op of `r` may still be in flight (unreaped). */
export function manualMaybeInFlight(w: World, r: RingM): boolean {
  for (const op of r.manual.values()) if (op.status === 'pending') return true
  return false
}

/**
 * A flood of ops on `[off, off + len)` of `b` is coming: whatever is in
 * flight on those bytes, and the bytes, become unknown.
 */
export function floodConflicts(w: World, b: BufM, off: number, len: number): void {
  for (const o of b.ops) {
    if (o.status === 'done') continue
    const ov = overlap(off, len, o.boff, o.len)
    if (!ov) continue
    if (o.kind === 'read') o.bufConflict!.fill(1, ov[0] - o.boff, ov[1] - o.boff)
    else o.srcKnown!.fill(0, ov[0] - o.boff, ov[1] - o.boff)
  }
  b.known.fill(0, off, off + len)
}

/** Unsettled ops a ring may hold (certain and maybe). */
export function ringLoad(w: World, r: RingM): number {
  let n = 0
  for (const op of r.ops) if (op.status === 'pending') n++
  return n
}

/** The model sees `op` complete with `res`. */
export function finishOp(w: World, op: Op, res: number, how: string): void {
  if (op.status === 'done') fail(`${op.label} completed twice (second time with ${res}, ${how})`)
  if (!Number.isInteger(res)) fail(`${op.label}: result ${show(res)} is not an integer`)
  op.status = 'done'
  op.result = res
  op.buf.ops.delete(op)
  op.ring.ops.delete(op)
  if (op.target.kind === 'file' || op.target.kind === 'pipe') op.target.ops.delete(op)
  op.pool.observedCompleted++
  if (res < 0) op.pool.observedFailed++
  w.log(`  ${op.label} -> ${res < 0 ? errName(res) : res} (${how})`)
  cover(`${op.api} ${op.kind} ${op.target.kind}: ${res < 0 ? errName(res) : res === 0 ? '0 bytes' : 'bytes'}`)
  if (!op.pool.real) cover(`op completed after its pool was dropped${op.ring.real ? '' : ' (ring dropped too)'}`)
  const view = op.view && op.view.length > 0 ? op.view : null
  const { target, len, kind } = op

  if (res < 0) {
    const cancelled = res === ECANCELED || res === EINTR
    if (cancelled && op.cancelable) {
      afterFailedOp(w, op, res)
      return
    }
    let want: number | null = null
    if (target.kind === 'bad') want = EBADF
    else if (target.kind === 'dir') want = kind === 'read' ? EISDIR : EBADF
    if (want === null || res !== want) {
      fail(`${op.label} failed with ${errName(res)}; expected ${want === null ? 'success' : errName(want)}${op.cancelable ? ' or ECANCELED/EINTR' : ''}`)
    }
    afterFailedOp(w, op, res)
    return
  }
  if (res > len) fail(`${op.label} transferred ${res} bytes, more than the ${len} asked for`)
  // The kernel may skip the EISDIR check for a 0-byte transfer.
  if (target.kind === 'dir' && len === 0 && res === 0) return
  switch (target.kind) {
    case 'bad':
    case 'dir':
      fail(`${op.label} succeeded with ${res} on ${target.name}; expected ${kind === 'read' && target.kind === 'dir' ? 'EISDIR' : 'EBADF'}`)
    // eslint-disable-next-line no-fallthrough
    case 'zero':
      // Reads of a character device may be short (the kernel's /dev/zero
      // stops at a page when it should reschedule under IOCB_NOWAIT, and
      // io_uring retries short reads of regular files only).
      if (kind === 'write' ? res !== len : len > 0 && res === 0) {
        fail(`${op.label} on /dev/zero transferred ${res}, expected ${kind === 'write' ? len : `1..${len}`}`)
      }
      if (kind === 'read') readIntoBuffer(w, op, res, view, () => 0)
      if (kind === 'read' && res < len) cover('short read of /dev/zero')
      return
    case 'null':
      if (res !== (kind === 'read' ? 0 : len)) fail(`${op.label} on /dev/null gave ${res}, expected ${kind === 'read' ? 0 : len}`)
      return
    case 'file':
      return kind === 'read' ? fileRead(w, op, target, res, view) : fileWrite(w, op, target, res)
    case 'pipe':
      return kind === 'read' ? pipeRead(w, op, target, res, view) : pipeWrite(w, op, target, res)
  }
}

function afterFailedOp(w: World, op: Op, res: number): void {
  if (op.target.kind === 'pipe' && op.kind === 'write') op.target.held -= op.len
  // A read that never started leaves the buffer alone; one that was
  // interrupted may have written part of it.
  const started = !(res === EBADF || res === EISDIR || res === ECANCELED)
  if (!started) return
  if (op.kind === 'read') op.buf.known.fill(0, op.boff, op.boff + op.len)
  else if (op.target.kind === 'file') {
    op.target.known.fill(0, op.pos, op.pos + op.len)
    op.target.sizeKnown = false
  } else if (op.target.kind === 'pipe') {
    op.target.opaque = true
    op.target.lost = true
  }
}

/** A read of `n` bytes finished: check them where known, then learn the buffer. */
function readIntoBuffer(w: World, op: Op, n: number, view: Uint8Array | null, expected: (i: number) => number | null): void {
  const b = op.buf
  let checked = 0
  for (let i = 0; i < n; i++) {
    const conflict = op.bufConflict![i] === 1
    if (view && !conflict) {
      const want = expected(i)
      const got = view[op.boff + i]
      if (want !== null && got !== want) {
        fail(`${op.label}: byte ${i} of the data read is ${got}, expected ${want} (buffer offset ${op.boff + i})`)
      }
      if (want !== null) checked++
    }
    b.data[op.boff + i] = view ? view[op.boff + i] : 0
    b.known[op.boff + i] = view && !conflict ? 1 : 0
  }
  cover('bytes read and compared', checked)
}

function fileRead(w: World, op: Op, f: FileM, n: number, view: Uint8Array | null): void {
  if (op.ambiguous || !f.sizeKnown) {
    readIntoBuffer(w, op, n, view, () => null)
    return
  }
  const want = Math.max(0, Math.min(op.len, f.size - op.pos))
  // Interrupted by the ring's close while running in a kernel worker, an
  // op may stop part-way.
  if (n !== want && !(op.cancelable && n < want)) {
    fail(`${op.label} read ${n} bytes; the file has ${f.size} bytes, so expected ${want}`)
  }
  readIntoBuffer(w, op, n, view, (i) => (f.known[op.pos + i] ? f.data[op.pos + i] : null))
}

function fileWrite(w: World, op: Op, f: FileM, n: number): void {
  if (n !== op.len && !(op.cancelable && n < op.len)) fail(`${op.label} wrote ${n} of ${op.len} bytes to a regular file`)
  if (n < op.len) cover('file write cut short by close')
  if (n === 0) return // a 0-byte write changes nothing, not even the size
  if (op.pos > f.size) {
    f.data.fill(0, f.size, op.pos)
    f.known.fill(1, f.size, op.pos)
  }
  for (let i = 0; i < n; i++) {
    f.data[op.pos + i] = op.src![i]
    f.known[op.pos + i] = op.srcKnown![i] && !op.fileConflict![i] ? 1 : 0
  }
  f.size = Math.max(f.size, op.pos + n)
}

function pipeRead(w: World, op: Op, p: PipeM, n: number, view: Uint8Array | null): void {
  if (op.len > 0 && n === 0) fail(`${op.label} read 0 bytes from a pipe that has a writer`)
  if (op.len === 0 && n !== 0) fail(`${op.label}: a 0-byte read gave ${n}`)
  p.read += n
  p.held -= n
  if (view && op.bufConflict!.every((c, i) => i >= n || c === 0)) {
    p.pieces.push(view.slice(op.boff, op.boff + n))
  } else {
    p.opaque = true
  }
  readIntoBuffer(w, op, n, view, () => null)
}

function pipeWrite(w: World, op: Op, p: PipeM, n: number): void {
  if (n !== op.len) fail(`${op.label} wrote ${n} of ${op.len} bytes to a pipe with room`)
  p.written += n
  if (op.srcKnown!.every((k) => k === 1)) p.chunks.push(op.src!.slice())
  else p.opaque = true
}

/**
 * `op`'s completion can never be taken (its ring is gone): whatever it did
 * becomes unknown, and nothing waits for it.
 */
export function loseOp(w: World, op: Op): void {
  op.observable = false
  const t = op.target
  if (t.kind === 'pipe') {
    t.lost = true
    t.opaque = true
  } else if (t.kind === 'file' && op.kind === 'write') {
    t.known.fill(0, op.pos, op.pos + op.len)
    t.sizeKnown = false
  }
  if (op.kind === 'read') op.buf.known.fill(0, op.boff, op.boff + op.len)
  w.log(`  ${op.label} can no longer be observed`)
}

/** Processes completions taken from `r` (takeCompletions or completions()). */
export function takeManual(w: World, r: RingM, list: unknown, how: string): void {
  if (!Array.isArray(list)) fail(`${how} gave ${show(list)}, not an array`)
  for (const c of list as Completion[]) {
    if (typeof c.userData !== 'bigint') fail(`${how}: userData ${show(c.userData)} is not a bigint`)
    const op = r.manual.get(c.userData)
    if (!op) fail(`${how} gave a completion no submission of ${r.name} is waiting for: ${show(c)}`)
    r.manual.delete(c.userData)
    if (c.bufferIndex !== op.buf.index) fail(`${how}: ${op.label} completed with bufferIndex ${c.bufferIndex}`)
    if (c.op !== op.kind) fail(`${how}: ${op.label} completed as a ${c.op}`)
    if (typeof c.flags !== 'number') fail(`${how}: flags ${show(c.flags)}`)
    finishOp(w, op, c.result, how)
  }
}

