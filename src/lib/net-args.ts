// The argument forms of `node:net`'s `connect()` and `listen()`, read into
// one options object, with Node's checks of ports, paths and callbacks.

import { invalidArgType, invalidArgValue, outOfRange, zcioError } from './errors.js'
import * as dns from 'node:dns'
import { isIP } from 'node:net'
import { badPort, missingArgs } from './net-errors.js'

type Callback = (...args: any[]) => void

/** Where `connect()` goes, and its callback. */
export interface ConnectArgs {
  options: Record<string, unknown> & { host?: string; port?: number; path?: string }
  callback: Callback | undefined
}

/** What `listen()` was asked, and its callback. */
export interface ListenArgs {
  options: Record<string, unknown> & { host?: string; port?: number; path?: string; backlog?: number }
  callback: Callback | undefined
}

/** A port as `node:net` takes it (its `validatePort`): a number or a string that converts to an integer from 0 to 65535 (`'0x50'` too). */
export function checkPort(port: unknown, name = 'Port', allowZero = true): number {
  const n = typeof port === 'number' || (typeof port === 'string' && port.trim() !== '') ? Number(port) : NaN
  if (n !== n >>> 0 || n > 65535 || (!allowZero && n === 0)) throw badPort(name, port, allowZero)
  return n
}

/** Not a pipe name: a number, or a string that converts to one >= 0 (Node's `isPipeName`). */
function isPortLike(v: unknown): boolean {
  return typeof v === 'number' || (typeof v === 'string' && Number(v) >= 0)
}

function lastCallback(args: unknown[]): Callback | undefined {
  const last = args[args.length - 1]
  return typeof last === 'function' ? (last as Callback) : undefined
}

/**
 * The TCP options of `connect()`, checked as `net.connect` checks them
 * (null counts as absent; a local port is checked as a port, where Node
 * lets a bad one through to bind).
 */
function checkDialOptions(o: Record<string, unknown>): void {
  for (const k of ['lookup', 'family', 'hints', 'autoSelectFamily', 'autoSelectFamilyAttemptTimeout', 'localAddress', 'localPort']) {
    if (o[k] === null || (k === 'localAddress' && o[k] === '')) delete o[k]
  }
  // A server's address() names its family; the lookup takes the number (as Node).
  if (o.family === 'IPv4') o.family = 4
  else if (o.family === 'IPv6') o.family = 6
  // What only a lookup uses is checked only when there is a name to look up (as Node).
  if (typeof o.host !== 'string' || isIP(o.host) === 0) {
    if (o.lookup !== undefined && typeof o.lookup !== 'function') throw invalidArgType('options.lookup', 'of type function', o.lookup)
    if (o.family !== undefined && o.family !== 0 && o.family !== 4 && o.family !== 6) {
      throw invalidArgValue('options.family', o.family, 'must be one of: 0, 4, 6')
    }
    if (o.hints !== undefined && typeof o.hints !== 'number') throw invalidArgType('options.hints', 'of type number', o.hints)
    // dns.lookup's check, made in the connect() call as Node makes it.
    if (typeof o.hints === 'number' && o.hints & ~(dns.ADDRCONFIG | dns.V4MAPPED | dns.ALL)) throw invalidArgValue('hints', o.hints, 'is invalid')
  }
  if (o.autoSelectFamily !== undefined && typeof o.autoSelectFamily !== 'boolean') {
    throw invalidArgType('options.autoSelectFamily', 'of type boolean', o.autoSelectFamily)
  }
  const t = o.autoSelectFamilyAttemptTimeout
  if (t !== undefined) {
    if (typeof t !== 'number') throw invalidArgType('options.autoSelectFamilyAttemptTimeout', 'of type number', t)
    if (!Number.isInteger(t)) throw outOfRange('options.autoSelectFamilyAttemptTimeout', 'an integer', t)
    if (t < 1 || t > 2 ** 31 - 1) throw outOfRange('options.autoSelectFamilyAttemptTimeout', '>= 1 && <= 2147483647', t)
  }
  if (o.localAddress !== undefined && (typeof o.localAddress !== 'string' || isIP(o.localAddress) === 0)) {
    throw Object.assign(new TypeError(`Invalid IP address: ${String(o.localAddress)}`), { code: 'ERR_INVALID_IP_ADDRESS' })
  }
  if (o.localPort !== undefined) {
    if (typeof o.localPort !== 'number') throw invalidArgType('options.localPort', 'of type number', o.localPort)
    o.localPort = checkPort(o.localPort, 'options.localPort')
  }
}

/** `connect(options[, cb])`, `connect(port[, host][, cb])`, `connect(path[, cb])`. */
export function connectArgs(args: unknown[]): ConnectArgs {
  const callback = lastCallback(args)
  const rest = callback ? args.slice(0, -1) : args
  const first = rest[0]
  let options: ConnectArgs['options']
  if (typeof first === 'object' && first !== null) options = { ...(first as Record<string, unknown>) }
  else if (typeof first === 'string' && !isPortLike(first)) options = { path: first }
  else if (first !== undefined) {
    options = { port: first as number }
    if (rest[1] !== undefined) options.host = rest[1] as string
  } else options = {}
  // As net.connect: a path that is set (not null, not '') makes it a Unix socket.
  if (options.path !== undefined && options.path !== null && options.path !== '') {
    if (typeof options.path !== 'string') throw invalidArgType('options.path', 'of type string', options.path)
    return { options: { ...options, host: undefined, port: undefined }, callback }
  }
  delete options.path
  checkDialOptions(options)
  if (options.port === undefined) throw missingArgs('"options" or "port" or "path"')
  // As net.connect: port 0 is let through (the connect is refused).
  if (typeof options.port !== 'number' && typeof options.port !== 'string') {
    throw invalidArgType('options.port', 'one of type number or string', options.port)
  }
  options.port = checkPort(options.port)
  if (options.host === undefined || options.host === null) options.host = 'localhost'
  else if (typeof options.host !== 'string') throw invalidArgType('options.host', 'of type string', options.host)
  return { options, callback }
}

/**
 * `listen([port[, host[, backlog]]][, cb])`, `listen(path[, backlog][, cb])`,
 * `listen(options[, cb])`.
 */
export function listenArgs(args: unknown[]): ListenArgs {
  const callback = lastCallback(args)
  const rest = callback ? args.slice(0, -1) : args
  const first = rest[0]
  let options: ListenArgs['options']
  if (typeof first === 'object' && first !== null) {
    options = { ...(first as Record<string, unknown>) }
    const given = first as Record<string, unknown>
    // A handle (its fd and listen() are on its prototype) or { fd } / { handle }; a
    // negative fd is no descriptor, and reads as options without a port (Node's).
    if ((typeof given.fd === 'number' && given.fd >= 0) || given.handle !== undefined || given._handle !== undefined || typeof given.listen === 'function') {
      throw zcioError('ERR_ZCIO_UNSUPPORTED', 'zcio.net servers listen on a port or a path: listen({ fd }) and listen(handle) are not supported')
    }
    const o = first as Record<string, unknown>
    // As net.Server reads an options object: a port (a number or a
    // numeric string; null or undefined under that key is 0), else a
    // non-empty path, else it is invalid.
    if (typeof o.port === 'number' || typeof o.port === 'string') options.port = checkPort(o.port, 'options.port')
    else if (typeof o.path === 'string' && o.path !== '') options.port = undefined
    else if ('port' in o && (o.port === undefined || o.port === null)) options.port = 0
    else if (!('port' in o) && !('path' in o)) throw invalidArgValue('options', first, 'must have the property "port" or "path"')
    else throw invalidArgValue('options', first, 'is invalid')
    if (options.port !== undefined) delete options.path
  } else if (typeof first === 'string' && !isPortLike(first)) {
    options = { path: first }
    if (typeof rest[1] === 'number') options.backlog = rest[1]
  } else {
    options = {}
    if (first !== undefined && first !== null) {
      if (typeof first !== 'number' && typeof first !== 'string') throw invalidArgValue('options', { port: first }, 'is invalid')
      options.port = first as number
    }
    let i = 1
    if (typeof rest[1] === 'string') options.host = rest[i++] as string
    if (typeof rest[i] === 'number') options.backlog = rest[i] as number
  }
  if (options.path !== undefined) {
    if (typeof options.path !== 'string') throw invalidArgType('options.path', 'of type string', options.path)
  } else {
    options.port = options.port === undefined || options.port === null ? 0 : checkPort(options.port, 'options.port')
    if (options.host !== undefined && options.host !== null && typeof options.host !== 'string') {
      throw invalidArgType('options.host', 'of type string', options.host)
    }
  }
  return { options, callback }
}
