// What a Node stream needs of a BufferGroup without importing it (the group
// imports the stream module, which makes Node streams): a brand check, the
// stream's binding, and a receive that can be paused and resumed.

import type { NativeStream } from './binding.js'

/** A running receive of the layer: `stop()` ends it, `pause()`/`resume()` leave data in the socket. */
export interface FlowHandle {
  stop(): void
  pause(): void
  resume(): void
}

/** Callbacks of a receive made through `flowOf`: each chunk's bytes are valid during `onData` only. */
export interface FlowCallbacks {
  onData(data: Uint8Array): void
  onEnd(error?: Error): void
}

/** A group's part for Node streams. */
export interface Flow {
  /** The binding of `stream`; throws ERR_INVALID_ARG_TYPE for anything else. */
  native(stream: unknown): NativeStream
  receive(stream: unknown, callbacks: FlowCallbacks): FlowHandle
}

/** The key of the type-only mark of a BufferGroup (no such value exists at run time). */
export declare const groupMark: unique symbol

/**
 * A `BufferGroup`, named without importing it (the group imports the stream
 * module, whose `toNodeStream` takes a group): only `BufferGroup` carries the
 * mark, whose key no user module can name.
 */
export interface ReceiveGroup {
  readonly [groupMark]: true
}

const flows = new WeakMap<object, Flow>()

/** Called by each BufferGroup's constructor. */
export function brandGroup(group: object, flow: Flow): void {
  flows.set(group, flow)
}

/** The flow of `group`, or undefined when it is no BufferGroup. */
export function flowOf(group: unknown): Flow | undefined {
  return typeof group === 'object' && group !== null ? flows.get(group) : undefined
}
