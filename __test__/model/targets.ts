// Where I/O goes: files, pipes, devices, bad descriptors; positions and
// lengths resolved against the model, and the errors an operation must get.

import fc from 'fast-check'
import { type BufSel, bufSel, isClosed, resolveBuf } from './cmd.js'
import { type PoolM, type RingM, type Target, FILE_SPAN, PIPE_IO_MAX, RING_OP_CAP } from './model.js'
import type { World } from './world.js'

const PIPE_READS_PENDING_MAX = 6

// I/O

export type TargetSel = 'file0' | 'file1' | 'pipe0' | 'pipe1' | 'zero' | 'null' | 'dir' | 'closed' | 'unused' | 'huge'
export interface PosSel {
  mode: 'zero' | 'abs' | 'far' | 'size' | 'huge'
  v: number
}
export interface LenSel {
  mode: 'full' | 'small' | 'any' | 'zero' | 'over'
  v: number
}
export interface IoSpec {
  buf: BufSel
  target: TargetSel
  pos: PosSel
  len: LenSel
  boff: { mode: 'zero' | 'any' | 'end'; v: number }
  write: boolean
}

export const targetSel = fc.constantFrom<TargetSel>(
  'file0', 'file0', 'file0', 'file1', 'file1', 'pipe0', 'pipe0', 'pipe1', 'zero', 'null', 'dir', 'closed', 'unused', 'huge',
)
export const posSel = fc.record({ mode: fc.constantFrom<PosSel['mode']>('zero', 'abs', 'abs', 'abs', 'far', 'size', 'size', 'huge'), v: fc.nat(1 << 20) })
export const lenSel = fc.record({ mode: fc.constantFrom<LenSel['mode']>('full', 'small', 'small', 'any', 'any', 'zero', 'over'), v: fc.nat(1 << 20) })
export const ioSpec = fc.record({
  buf: bufSel,
  target: targetSel,
  pos: posSel,
  len: lenSel,
  boff: fc.record({ mode: fc.constantFrom<IoSpec['boff']['mode']>('zero', 'zero', 'any', 'any', 'end'), v: fc.nat(1 << 20) }),
  write: fc.boolean(),
})

export interface Resolved {
  index: number
  target: Target
  fd: number
  pos: number
  len: number
  boff: number
}

export function resolveTarget(w: World, r: RingM, sel: TargetSel, v: number): Target {
  switch (sel) {
    case 'file0':
      return w.files[0]
    case 'file1':
      return w.files[1]
    case 'pipe0':
      return w.pipes[0]
    case 'pipe1':
      return w.pipes[1]
    case 'zero':
      return w.zero
    case 'null':
      return w.null
    case 'dir':
      return w.dir
    case 'closed':
      // Closed just now and submitted at once, so no other open can take the
      // number in between (an SQPOLL ring submits later: use another bad fd).
      if (!r.sqpoll) return { kind: 'bad', name: 'a closed fd', fd: w.closedFd() }
      return { kind: 'bad', name: 'an unused fd', fd: w.unusedFd(v) }
    case 'unused':
      return { kind: 'bad', name: 'an unused fd', fd: w.unusedFd(v) }
    case 'huge':
      return { kind: 'bad', name: 'fd 2 ** 31 - 1', fd: 2 ** 31 - 1 }
  }
}

export function resolveIo(w: World, p: PoolM, s: IoSpec, boffAllowed: boolean): Resolved {
  const index = resolveBuf(p, s.buf)
  const target = resolveTarget(w, p.ring, s.target, s.buf.v)
  // 'end': at the very end of the buffer, where only 0 bytes fit.
  const boff = !boffAllowed ? 0 : s.boff.mode === 'any' ? s.boff.v % p.size : s.boff.mode === 'end' ? p.size : 0
  const room = p.size - boff
  let len: number
  switch (s.len.mode) {
    case 'full':
      len = room
      break
    case 'small':
      len = room === 0 ? 0 : 1 + (s.len.v % Math.min(64, room))
      break
    case 'any':
      len = s.len.v % (room + 1)
      break
    case 'zero':
      len = 0
      break
    case 'over':
      len = room + 1 + (s.len.v % 4)
      break
  }
  if (target.kind === 'pipe' && s.len.mode !== 'over') len = Math.min(len, PIPE_IO_MAX)
  let pos: number
  switch (s.pos.mode) {
    case 'zero':
      pos = 0
      break
    case 'abs': {
      // Mostly inside the file, or just past its end.
      const size = target.kind === 'file' ? target.size : 0
      pos = s.pos.v % Math.min(FILE_SPAN, Math.max(size, 4096) + 4096)
      break
    }
    case 'far':
      pos = s.pos.v % FILE_SPAN
      break
    case 'size': {
      const size = target.kind === 'file' ? target.size : 0
      pos = Math.min(FILE_SPAN, Math.max(0, size + (s.pos.v % 512) - 256))
      break
    }
    case 'huge':
      pos = s.write ? s.pos.v % FILE_SPAN : Number.MAX_SAFE_INTEGER
      break
  }
  return { index, target, fd: target.fd, pos, len, boff }
}

/** The state error a single op with these arguments must get, if any. */
export function opError(p: PoolM, index: number, len: number, boff: number): string | null {
  if (isClosed(p)) return 'ERR_ZCIO_CLOSED'
  const b = p.bufs[index]
  if (!b) return 'ERR_OUT_OF_RANGE'
  if (!b.acquired) return 'ERR_ZCIO_NOT_ACQUIRED'
  if (boff + len > p.size) return 'ERR_OUT_OF_RANGE'
  return null
}

/** Whether the model can take one more op of this kind now (keeps the CQ from overflowing, pipes from filling). */
export function roomFor(w: World, p: PoolM, ops: { target: Target; len: number; write: boolean }[]): boolean {
  if (w.ringLoad(p.ring) + ops.length > RING_OP_CAP) return false
  for (const pipe of w.pipes) {
    const mine = ops.filter((o) => o.target === pipe)
    if (mine.length === 0) continue
    const reads = mine.filter((o) => !o.write).length
    const pendingReads = [...pipe.ops].filter((o) => o.kind === 'read' && o.status !== 'done').length
    if (pendingReads + reads > PIPE_READS_PENDING_MAX) return false
    const bytes = mine.filter((o) => o.write).reduce((a, o) => a + o.len, 0)
    if (pipe.held + bytes > 32 * 1024) return false
  }
  return true
}
