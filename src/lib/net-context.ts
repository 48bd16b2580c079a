// The ring and receive group `zcio.net` sockets and servers use when none is
// given: one per thread (each worker loads its own copy of this module),
// made on first use, closed a turn after its last user let go, so a process
// whose sockets are all closed exits by itself and holds no group memory.

import { invalidArgType } from './errors.js'
import { flowOf } from './group-brand.js'
import { BufferGroup } from './group.js'
import type { Lease } from './net-port.js'
import { Ring } from './ring.js'

/** The group id of the default ring's receive group (the ring is this module's alone). */
const GROUP_ID = 1
/**
 * Receive buffers: each chunk is copied out and its buffer handed back at
 * once, so buffers are held only between the kernel's fill and the copy;
 * 64 of 64 KiB keep a busy loopback stream and many small connections fed.
 */
const BUFFER_SIZE = 64 * 1024
const BUFFER_COUNT = 64

/** A ring and a group to receive through, and whether they are the default ones. */
export interface NetContext {
  readonly ring: Ring
  readonly group: BufferGroup
}

let current: NetContext | undefined
let users = 0
/** Users that keep the event loop alive: not `unref()`ed, or with work under way. */
let holders = 0
let releasing: NodeJS.Immediate | undefined

/**
 * The default context, counted as used until `release` is called once for
 * each `acquire`.
 */
export function acquireDefault(): NetContext {
  users++
  if (releasing !== undefined) {
    clearImmediate(releasing)
    releasing = undefined
  }
  if (current === undefined || current.ring.closed || current.group.closed) {
    const ring = new Ring()
    try {
      current = { ring, group: new BufferGroup(ring, { groupId: GROUP_ID, bufferSize: BUFFER_SIZE, bufferCount: BUFFER_COUNT }) }
      applyHold()
    } catch (e) {
      users--
      ring.close()
      throw e
    }
  }
  return current
}

/** Ends one use of the default context; the last one closes it a turn later (unless a new user came). */
export function releaseDefault(): void {
  if (users === 0) return
  if (--users > 0 || current === undefined) return
  releasing = setImmediate(() => {
    releasing = undefined
    if (users > 0 || current === undefined) return
    const { ring, group } = current
    current = undefined
    group.close()
    ring.close()
  }).unref()
}

/** The default ring holds the loop while one of its users does (sockets and servers that are not `unref()`ed). */
function applyHold(): void {
  if (current === undefined) return
  if (holders > 0) current.ring.ref()
  else current.ring.unref()
}

/** How many sockets and servers use the default context (for tests). */
export function defaultUsers(): number {
  return users
}

/**
 * A ring and the flow of its group for one socket or server: `ring` and
 * `group` when given (the caller's, never closed here), else the default
 * ones, used until `release()` (once; later calls do nothing).
 */
export function lease(ring: unknown, group: unknown): Lease {
  if (ring !== undefined || group !== undefined) {
    if (!(ring instanceof Ring)) throw invalidArgType('options.ring', 'an instance of Ring', ring)
    const flow = flowOf(group)
    if (!(group instanceof BufferGroup) || flow === undefined) throw invalidArgType('options.group', 'an instance of BufferGroup', group)
    // The caller's ring holds the loop as the caller set it (`ring.unref()`).
    return { ring, flow, release: () => {}, hold: () => {} }
  }
  const ctx = acquireDefault()
  let held = true
  let holding = true
  holders++
  applyHold()
  return {
    ring: ctx.ring,
    flow: flowOf(ctx.group)!,
    release: () => {
      if (!held) return
      held = false
      if (holding) {
        holding = false
        holders--
        applyHold()
      }
      releaseDefault()
    },
    hold: (on: boolean) => {
      if (!held || on === holding) return
      holding = on
      holders += on ? 1 : -1
      applyHold()
    },
  }
}
