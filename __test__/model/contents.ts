// File and pipe contents: writes from JavaScript, draining, and the
// comparison of what came out with what went in.

import * as fs from 'node:fs'
import { type PipeM, PIPE_IO_MAX, PIPE_ROOM, cover, fail, sleep, tick } from './model.js'
import type { World } from './world.js'

/** Feeds pipes until no read waits on them, so nothing is left pending. */
export async function feedPipes(w: World): Promise<void> {
  for (let round = 0; round < 200; round++) {
    takeAll(w)
    let need = false
    for (const p of w.pipes) {
      const waiting = [...p.ops].filter((o) => o.kind === 'read' && o.status === 'pending' && o.observable)
      if (waiting.length === 0) continue
      need = true
      const n = Math.min(PIPE_IO_MAX, Math.max(1, PIPE_ROOM - p.held))
      pipeWriteSync(w, p, n, round)
    }
    if (!need) break
    await tick()
    await sleep(1)
  }
  if (w.failures.length > 0) return
  for (const p of w.pipes) {
    if ([...p.ops].some((o) => o.kind === 'read' && o.status === 'pending' && o.observable)) {
      fail(`reads of ${p.name} still pending after feeding it`)
    }
    // Reads nobody can observe any more (their ring is gone) must still
    // end, or their ring would keep the process alive: give each its fill.
    const lost = [...p.ops].filter((o) => o.kind === 'read' && o.status === 'pending')
    if (lost.length > 0) {
      pipeWriteSync(w, p, lost.reduce((a, o) => a + o.len, 0), 0)
      await sleep(20)
    }
  }
}

/** Takes the completions of low-level ops from every ring still held. */
export function takeAll(w: World): void {
  for (const r of w.rings) {
    if (r.real && r.manual.size > 0) w.takeManual(r, r.real.takeCompletions(), `${r.name}.takeCompletions()`)
  }
}

export function pipeWriteSync(w: World, p: PipeM, len: number, seed: number): number {
  const chunk = new Uint8Array(len)
  for (let i = 0; i < len; i++) chunk[i] = (seed * 31 + i * 13 + p.written) & 0xff
  let n: number
  try {
    n = fs.writeSync(p.fd, chunk)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return 0
    throw e
  }
  if (n !== len) fail(`writing ${len} bytes to ${p.name} wrote ${n}`)
  for (const o of p.ops) if (o.kind === 'write' && o.status !== 'done') p.sequential = false
  p.chunks.push(chunk)
  p.written += n
  p.held += n
  w.log(`  fs.writeSync(${p.name}, ${len} bytes)`)
  return n
}

/** Reads what is left in a pipe, checking it against what went in. */
export function drainPipe(w: World, p: PipeM): void {
  const pendingReads = [...p.ops].some((o) => o.kind === 'read' && o.status !== 'done')
  if (pendingReads) p.sequential = false
  const got: Buffer[] = []
  const scratch = Buffer.alloc(65536)
  for (;;) {
    let n: number
    try {
      n = fs.readSync(p.fd, scratch)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break
      throw e
    }
    if (n === 0) break
    got.push(Buffer.from(scratch.subarray(0, n)))
  }
  const drained = Buffer.concat(got)
  p.pieces.push(new Uint8Array(drained))
  p.read += drained.length
  p.held -= drained.length
  w.log(`  drained ${drained.length} bytes from ${p.name}`)
  const quiet = ![...p.ops].some((o) => o.status !== 'done')
  if (!quiet || p.lost) return
  if (p.read !== p.written) fail(`${p.name}: ${p.written} bytes went in, ${p.read} came out`)
  if (p.opaque) return
  const inBytes = Buffer.concat(p.chunks)
  const outBytes = Buffer.concat(p.pieces)
  cover(`pipe contents compared (${p.sequential ? 'in order' : 'as a multiset'})`)
  if (p.sequential) {
    if (!inBytes.equals(outBytes)) fail(`${p.name}: the bytes read differ from the bytes written (in order)`)
  } else {
    const h = new Int32Array(256)
    for (const x of inBytes) h[x]++
    for (const x of outBytes) h[x]--
    if (h.some((x) => x !== 0)) fail(`${p.name}: the bytes read are not the bytes written`)
  }
  // Start over from an empty pipe.
  p.chunks = []
  p.pieces = []
  p.written = 0
  p.read = 0
  p.held = 0
  p.sequential = true
}

export function checkFiles(w: World): void {
  for (const f of w.files) {
    if ([...f.ops].some((o) => o.kind === 'write')) continue
    const real = fs.readFileSync(f.path)
    cover('file contents compared')
    if (f.sizeKnown && real.length !== f.size) fail(`${f.name} has ${real.length} bytes, the model ${f.size}`)
    const n = Math.min(real.length, f.size)
    for (let i = 0; i < n; i++) {
      if (f.known[i] && real[i] !== f.data[i]) fail(`${f.name}: byte ${i} is ${real[i]}, expected ${f.data[i]}`)
    }
  }
}

/** Ends the run: everything must settle, data must match. */
