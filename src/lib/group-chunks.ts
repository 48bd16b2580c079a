// Who holds each chunk of a group: per buffer id, the chunks out (oldest
// first) and the receive each came from. Releasing a chunk counts it off its
// receive (which resumes a receive paused at its limit); a chunk object that
// is collected without `release()` is given back here, counted and warned
// about once, so a leak is visible and bounded instead of drying the group.

import type { NativeGroup } from './binding.js'
import { zcioError } from './errors.js'

/** What a receive counts: chunks it delivered that are not released yet. */
export interface Holder {
  held: number
  /** One of its chunks was released (or reclaimed). */
  released(): void
}

/** One chunk out. */
export interface ChunkRecord {
  readonly bufferId: number
  /** The receive it came from (0: a one-shot `recv`). */
  readonly holder: number
  released: boolean
}

let warned = false

export class ChunkBook {
  readonly #native: NativeGroup
  readonly #after: () => void
  /** Per buffer id, its chunks out, oldest first. */
  readonly #out: (ChunkRecord[] | undefined)[] = []
  /** Live receives by id; a record names its receive by id, so a collected chunk's record keeps no receive alive. */
  readonly #holders = new Map<number, Holder>()
  #nextHolder = 1
  readonly #registry = new FinalizationRegistry<ChunkRecord>((r) => this.#reclaim(r))
  leaked = 0

  /** `after` runs after every give-back (it re-arms receives waiting for a buffer). */
  constructor(native: NativeGroup, after: () => void) {
    this.#native = native
    this.#after = after
  }

  addHolder(h: Holder): number {
    const id = this.#nextHolder++
    this.#holders.set(id, h)
    return id
  }

  /** The receive ended: its chunks still out no longer count for it. */
  dropHolder(id: number): void {
    this.#holders.delete(id)
  }

  /** A chunk arrived for receive `holder`. */
  add(bufferId: number, holder: number): ChunkRecord {
    const r: ChunkRecord = { bufferId, holder, released: false }
    ;(this.#out[bufferId] ??= []).push(r)
    const h = this.#holders.get(holder)
    if (h) h.held++
    return r
  }

  /** Gives `r` back if `owner` (its chunk's data view) is collected while it is out. */
  watch(owner: object, r: ChunkRecord): void {
    this.#registry.register(owner, r, r)
  }

  /** `chunk.release()`. */
  release(r: ChunkRecord): void {
    if (r.released) throw zcioError('ERR_ZCIO_NOT_ACQUIRED', `this chunk of buffer ${r.bufferId} was already released`)
    this.#native.release(r.bufferId)
    this.#settle(r)
    this.#registry.unregister(r)
    this.#after()
  }

  /** `put(bufferId)`: the oldest chunk of that buffer. */
  put(bufferId: number): void {
    const list = this.#out[bufferId]
    if (list === undefined || list.length === 0) {
      this.#native.release(bufferId) // not held: the core's error (NOT_ACQUIRED, OUT_OF_RANGE)
      return
    }
    this.release(list[0])
  }

  /** Gives back a chunk released as an empty completion (no record made). */
  releaseRaw(bufferId: number): void {
    this.#native.release(bufferId)
    this.#after()
  }

  #settle(r: ChunkRecord): void {
    r.released = true
    const list = this.#out[r.bufferId]!
    const i = list.indexOf(r)
    if (i >= 0) list.splice(i, 1)
    const h = this.#holders.get(r.holder)
    if (h) {
      h.held--
      h.released()
    }
  }

  #reclaim(r: ChunkRecord): void {
    if (r.released) return
    try {
      this.#native.release(r.bufferId)
    } catch {
      return // the group's memory is gone with its ring: nothing to give back
    }
    this.#settle(r)
    this.leaked++
    if (!warned) {
      warned = true
      process.emitWarning(
        `a chunk of buffer ${r.bufferId} was collected without release(); zcio gave its buffer back. ` +
          'Release every chunk (chunk.release() or group.put()): until collection the buffer is lost to receives',
        { type: 'ZcioWarning', code: 'ZCIO_CHUNK_LEAKED' },
      )
    }
    this.#after()
  }
}
