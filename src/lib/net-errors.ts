// Errors of `zcio.net` in `node:net`'s shapes: system errors named after the
// call Node names (`connect`, `listen`, `read`, `write`) with the address in
// the message and as properties, and Node's own `ERR_*` codes.

import { inspect } from 'node:util'
import type { ZcioError } from './errors.js'
import { zcioError } from './errors.js'

/** What the layer's system calls are called in `node:net`'s messages. */
const NODE_SYSCALL: Record<string, string> = { send: 'write', sendmsg: 'write', send_zc: 'write', recv: 'read', shutdown: 'shutdown' }

/** Where a socket connects or listens, for messages. */
export interface Where {
  address?: string
  port?: number
}

/** Errors `systemError` made: already in their final shape. */
const shaped = new WeakSet<object>()

/**
 * `err` as `node:net` reports a failed system call: `"connect ECONNREFUSED
 * 127.0.0.1:80"`, `"listen EADDRINUSE: address already in use :::80"`,
 * `"write EPIPE"`, with `code`, `errno`, `syscall` and, when given, `address`
 * and `port`. Anything but a system error is returned as it is.
 */
export function systemError(err: unknown, syscall?: string, where?: Where): Error {
  const e = err as Partial<ZcioError> & Error
  if (typeof e !== 'object' || e === null || typeof e.errno !== 'number' || typeof e.code !== 'string' || shaped.has(e)) return err as Error
  const call = syscall ?? NODE_SYSCALL[e.syscall ?? ''] ?? e.syscall ?? 'unknown'
  let message = `${call} ${e.code}`
  if (call === 'listen' && e.code === 'EADDRINUSE') message = `${message}: address already in use`
  if (where?.address !== undefined) message += ` ${where.address}${where.port !== undefined ? `:${where.port}` : ''}`
  const out = new Error(message) as Error & ZcioError & Where
  out.errno = e.errno
  out.code = e.code
  out.syscall = call
  if (where?.address !== undefined) out.address = where.address
  if (where?.port !== undefined) out.port = where.port
  shaped.add(out)
  return out
}

/** `ERR_SOCKET_CLOSED`: an operation on a socket that is closed. */
export function socketClosed(): ZcioError {
  return zcioError('ERR_SOCKET_CLOSED', 'Socket is closed')
}

/** `ERR_SERVER_NOT_RUNNING`: `close()` of a server that is not listening. */
export function serverNotRunning(): ZcioError {
  return zcioError('ERR_SERVER_NOT_RUNNING', 'Server is not running.')
}

/** `ERR_SERVER_ALREADY_LISTEN`: `listen()` of a server that listens already. */
export function alreadyListening(): ZcioError {
  return zcioError('ERR_SERVER_ALREADY_LISTEN', 'Listen method has been called more than once without closing.')
}

/** `ERR_SOCKET_BAD_PORT`, as Node words it (a RangeError). */
export function badPort(name: string, port: unknown, allowZero = true): ZcioError {
  const shown = typeof port === 'string' ? `type string ('${port}')` : typeof port === 'number' ? `type number (${port})` : inspect(port)
  const e = new RangeError(`${name} should be ${allowZero ? '>=' : '>'} 0 and < 65536. Received ${shown}.`) as RangeError & ZcioError
  Object.defineProperty(e, 'code', { value: 'ERR_SOCKET_BAD_PORT', enumerable: true, writable: true, configurable: true })
  return e
}

/** `ERR_MISSING_ARGS`, as Node words it. */
export function missingArgs(what: string): ZcioError {
  const e = new TypeError(`The ${what} argument must be specified`) as TypeError & ZcioError
  Object.defineProperty(e, 'code', { value: 'ERR_MISSING_ARGS', enumerable: true, writable: true, configurable: true })
  return e
}
