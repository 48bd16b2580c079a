// The end of a run, for the network part: every byte sent arrives (where
// both ends stayed open and no send failed), every stream closes after its
// sends settled, every receive ends, groups get every buffer back, and the
// rings close.

import { cover, fail, sleep, tick, SETTLE_TIMEOUT_MS } from './model.js'
import { type GroupM, type StreamM, caughtUp, describeStream, releaseChunk } from './net-model.js'
import { closeNetRing, closeStream, newGroup } from './net-life.js'
import { startRecv } from './net-recv.js'
import type { World } from './world.js'

async function until(w: World, what: () => string[], timeoutMs = SETTLE_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (let round = 0; ; round++) {
    if (w.failures.length > 0) fail(w.failures.join('\n'))
    const left = what()
    if (left.length === 0) return
    if (Date.now() > deadline) fail(`hang: after ${timeoutMs} ms:\n  ${left.join('\n  ')}`)
    if (round < 50) await tick()
    else await sleep(2)
  }
}

function releaseAll(w: World): void {
  for (const g of w.net.groups) {
    for (const c of [...g.chunks]) if (c.obj || g.real) releaseChunk(w, c, false)
  }
}

/** A group `s` can receive through to the end: an open one of its ring, or a new one. */
function drainGroup(w: World, s: StreamM): GroupM | null {
  const g = s.ring.groups.find((x) => x.real && !x.closed)
  if (g) return g
  for (let id = 65535; id > 65500; id--) {
    if (s.ring.groups.some((x) => x.groupId === id)) continue
    return newGroup(w, s.ring, id, 4096, 8)
  }
  return null
}

export async function netFinish(w: World): Promise<void> {
  w.log('-- finish (network)')
  releaseAll(w)
  // One-shot receives end once data or end of stream comes.
  for (const s of w.net.streams) {
    if (!s.real || s.closed || s.ring.closed || s.peer.closed) continue
    if (!s.peer.shutWrite) {
      s.peer.real!.shutdown('write')
      s.peer.shutWrite = true
      w.log(`  ${s.peer.name}.shutdown('write')`)
    }
  }
  await until(w, () => {
    releaseAll(w)
    // (A receive its stream's close did not cancel ends when the peer closes, below.)
    return w.net.streams.filter((s) => s.recv?.mode === 'recv' && !s.recv.done && !s.recv.orphaned && !s.peer.closedUnderRecv).map((s) => s.recv!.label)
  })
  // Receives of closed groups can't read on (and may wait for a re-arm that
  // never comes, a known issue): stop them first.
  for (const s of w.net.streams) {
    const r = s.recv
    if (r && !r.done && r.mode !== 'recv' && r.group.closed && !r.stopped) {
      r.stopped = true
      r.stop!()
    }
  }
  await until(w, () => w.net.streams.filter((s) => s.recv && !s.recv.done && s.recv.stopped).map((s) => `${s.recv!.label} did not end when stopped`))
  // Every direction with both ends open is read to its end.
  for (const s of w.net.streams) {
    if (!s.real || s.closed || s.ring.closed || s.peer.closed || s.eof) continue
    if (s.recv && !s.recv.done) {
      s.recv.policy = 'now'
      if (!s.recv.stopped) continue
    }
    const g = drainGroup(w, s)
    if (g) startRecv(w, s, g, 'callback', 'now')
  }
  await until(w, () => {
    releaseAll(w)
    return w.net.streams
      .filter((s) => s.real && !s.closed && !s.ring.closed && !s.peer.closed && !s.eof && s.recv && !s.recv.done)
      .map((s) => `${s.recv!.label} has not seen end of stream: ${describeStream(s)}, ${describeStream(s.peer)}`)
  })
  for (const s of w.net.streams) {
    if (!s.eof || s.peer.cut !== Infinity || s.inCut !== Infinity || s.peer.closed) continue
    cover('direction compared in full at the end')
    if (!caughtUp(s)) fail(`${s.peer.name} sent ${s.peer.outLen} bytes; ${s.name} received ${s.received} before end of stream`)
  }
  // Close every stream: close() settles after the stream's sends.
  const closing: Promise<void>[] = []
  for (const s of w.net.streams) if (s.real && !s.closed) closing.push(closeStream(w, s))
  await until(w, () => w.net.streams.filter((s) => s.real && s.closed && !s.closeDone).map((s) => `${s.name}.close() has not settled: ${describeStream(s)}`))
  await Promise.all(closing)
  await until(w, () => w.net.streams.flatMap((s) => [...s.sends].filter((x) => !x.settled).map((x) => x.label)))
  for (const s of w.net.streams) if (s.recv && !s.recv.done && s.recv.stop && !s.recv.stopped) {
    s.recv.stopped = true
    s.recv.stop()
  }
  await until(w, () => {
    releaseAll(w)
    return w.net.streams.filter((s) => s.recv && !s.recv.done && !s.recv.orphaned && !s.peer.closedUnderRecv).map((s) => `${s.recv!.label} never ended`)
  })
  // Receives their stream's close left in the kernel (a known issue) end
  // with the ring.
  for (const r of w.net.rings) {
    if (r.real && !r.closed && r.streams.some((s) => s.recv && !s.recv.done && (s.recv.orphaned || s.peer.closedUnderRecv))) closeNetRing(w, r)
  }
  await until(w, () => w.net.streams.filter((s) => s.recv && !s.recv.done).map((s) => `${s.recv!.label} never ended`))
  w.check('finish (network)')
  for (const g of w.net.groups) {
    // A closed group keeps released buffers out of the kernel's ring.
    if (!g.real || g.closed) continue
    const n = g.real.availableCount
    if (g.chunks.length === 0 && n !== g.count) fail(`${g.name} has ${n} of ${g.count} buffers available with no chunk held`)
  }
  for (const r of w.net.rings) if (r.real && !r.closed && !closeNetRing(w, r)) fail(`${r.name}: zero-copy sends still unsettled at the end`)
}

/** Releases what the run holds, whatever state a failure left it in. */
export function netCleanup(w: World): void {
  for (const r of w.net.rings) {
    try {
      r.real?.close()
    } catch {
      // Reported by the run already.
    }
    r.real = null
    if (r.pool) r.pool.real = null
  }
  for (const g of w.net.groups) {
    g.real = null
    g.chunks = []
  }
  for (const s of w.net.streams) s.real = null
}
