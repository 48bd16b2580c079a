// Argument checks in the style of Node's `fs`: a wrong type is
// ERR_INVALID_ARG_TYPE, a number that is negative, not an integer or too big
// is ERR_OUT_OF_RANGE. They only check shapes; what a value means for a pool
// or a ring (an index past the end, a buffer not acquired) is the core's call.

import { invalidArgType, outOfRange } from './errors.js'

/** The largest file descriptor Node accepts. */
export const MAX_FD = 2 ** 31 - 1
/** The largest 32-bit unsigned value. */
export const MAX_U32 = 2 ** 32 - 1

export function validateInteger(value: unknown, name: string, min: number, max: number): asserts value is number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value)
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value)
  if (value < min || value > max) throw outOfRange(name, `>= ${min} && <= ${max}`, value)
}

export function validateFd(value: unknown, name = 'fd'): asserts value is number {
  validateInteger(value, name, 0, MAX_FD)
}

export function validateIndex(value: unknown, name = 'index'): asserts value is number {
  validateInteger(value, name, 0, MAX_U32)
}

export function validatePosition(value: unknown, name = 'position'): asserts value is number {
  validateInteger(value, name, 0, Number.MAX_SAFE_INTEGER)
}

export function validateTypedArray<T>(
  value: unknown,
  name: string,
  ctor: abstract new (...args: never[]) => T,
): asserts value is T {
  if (!(value instanceof ctor)) throw invalidArgType(name, `an instance of ${ctor.name}`, value)
}

export function validateObject(value: unknown, name: string): asserts value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalidArgType(name, 'of type object', value)
  }
}

/** An `AbortSignal` option, checked as Node checks one (`ERR_INVALID_ARG_TYPE`); `undefined` when absent. */
export function validateSignal(signal: unknown, name: string): AbortSignal | undefined {
  if (signal === undefined) return undefined
  if (typeof signal !== 'object' || signal === null || typeof (signal as AbortSignal).aborted !== 'boolean') {
    throw invalidArgType(name, 'an instance of AbortSignal', signal)
  }
  return signal as AbortSignal
}
