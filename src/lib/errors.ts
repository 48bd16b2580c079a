// Errors shaped like Node's own: `code`, and for system errors `errno` and
// `syscall`, with Node's message formats.

import { inspect, getSystemErrorMap } from 'node:util'

/** An error thrown or rejected by zcio: always has a stable `code`. */
export interface ZcioError extends Error {
  /** `ERR_ZCIO_*`, a Node `ERR_*` code, or an errno name such as `EBADF`. */
  code: string
  /** Negative errno, for system errors. */
  errno?: number
  /** The system call that failed (`read`, `write`, `io_uring_setup`...). */
  syscall?: string
}

function withCode<E extends Error>(err: E, code: string): E & ZcioError {
  Object.defineProperty(err, 'code', { value: code, enumerable: true, writable: true, configurable: true })
  return err as E & ZcioError
}

/** A plain `Error` with a zcio code. */
export function zcioError(code: string, message: string): ZcioError {
  return withCode(new Error(message), code)
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return ` Received ${String(value)}`
  if (typeof value === 'function') return ` Received function ${value.name || '<anonymous>'}`
  if (typeof value === 'object') {
    const name = (value as { constructor?: { name?: string } }).constructor?.name
    return name ? ` Received an instance of ${name}` : ` Received ${inspect(value, { depth: -1 })}`
  }
  let shown = inspect(value, { colors: false })
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`
  return ` Received type ${typeof value} (${shown})`
}

/** `ERR_INVALID_ARG_TYPE`, as Node words it. */
export function invalidArgType(name: string, expected: string, value: unknown): ZcioError {
  const kind = name.includes('.') ? 'property' : 'argument'
  return withCode(new TypeError(`The "${name}" ${kind} must be ${expected}.${describe(value)}`), 'ERR_INVALID_ARG_TYPE')
}

/** `ERR_OUT_OF_RANGE`, as Node words it. */
export function outOfRange(name: string, range: string, value: unknown): ZcioError {
  const shown = typeof value === 'number' ? String(value) : inspect(value)
  return withCode(
    new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${shown}`),
    'ERR_OUT_OF_RANGE',
  )
}

/** `ERR_INVALID_ARG_VALUE`, as Node words it. */
export function invalidArgValue(name: string, value: unknown, reason: string): ZcioError {
  const kind = name.includes('.') ? 'property' : 'argument'
  return withCode(
    new TypeError(`The ${kind} '${name}' ${reason}. Received ${inspect(value)}`),
    'ERR_INVALID_ARG_VALUE',
  )
}

/**
 * A method called on an object that is not a `type`: `ERR_INVALID_ARG_TYPE`
 * about the `this` argument, as every class of this package reports it.
 */
export function invalidThis(type: string): ZcioError {
  return withCode(new TypeError(`The "this" argument must be an instance of ${type}.`), 'ERR_INVALID_ARG_TYPE')
}

let errorMap: Map<number, [string, string]> | undefined

/** The error of a failed kernel operation (`result` is `-errno`). */
export function errnoError(result: number, syscall: string): ZcioError {
  errorMap ??= getSystemErrorMap()
  const [code, text] = errorMap.get(result) ?? [`Unknown system error ${result}`, 'unknown error']
  const err = withCode(new Error(`${code}: ${text}, ${syscall}`), code)
  err.errno = result
  err.syscall = syscall
  return err
}

/** The `AbortError` of an operation whose `signal` aborted (as Node's). */
export function abortError(reason: unknown): Error {
  const e = new Error('The operation was aborted', { cause: reason })
  e.name = 'AbortError'
  ;(e as { code?: string }).code = 'ABORT_ERR'
  return e
}
