// `write()` on a zcio.net socket whose peer ended and that is not half-open
// (installed at `'end'`): after this side's own end it fails with `EPIPE`,
// "This socket has been ended by the other party", as net.Socket's
// `writeAfterFIN`; before it, it writes as usual.

import { Duplex } from 'node:stream'

type Callback = (error?: Error | null) => void

/** `write()` once the peer ended and the socket is not half-open: `EPIPE` after this side's own end (net.Socket's `writeAfterFIN`). */
export function writeAfterFin(this: Duplex, chunk: unknown, encoding?: unknown, cb?: unknown): boolean {
  if (!this.writableEnded) return Duplex.prototype.write.call(this, chunk, encoding as BufferEncoding, cb as Callback)
  const callback = typeof encoding === 'function' ? encoding : cb
  const er = Object.assign(new Error('This socket has been ended by the other party'), { code: 'EPIPE' })
  if (typeof callback === 'function') process.nextTick(callback as Callback, er)
  this.destroy(er)
  return false
}
