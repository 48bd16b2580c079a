// Addresses: where to connect or listen, and what a socket reports.

import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import type { ZcioError } from './errors.js'
import { invalidArgType, invalidArgValue } from './errors.js'
import { validateInteger, validateObject } from './validate.js'

/** The address of a TCP socket. */
export interface InetAddress {
  family: 'IPv4' | 'IPv6'
  /** Numeric: `'127.0.0.1'`, `'::1'`. */
  address: string
  port: number
}

/** The address of a Unix stream socket (`path` is `''` for an unnamed one, such as a connecting client's). */
export interface UnixAddress {
  family: 'unix'
  path: string
}

/** What a socket reports: narrow it by `family` (a listener or stream made from a TCP or a Unix address has that kind already). */
export type SocketAddress = InetAddress | UnixAddress

/** Where to connect or listen over TCP: `host` (default `127.0.0.1`) and `port`. */
export interface InetAddressOptions {
  /**
   * A numeric IPv4 or IPv6 address, or (for `TcpStream.connect` and
   * `TcpListener.listen`) a host name, resolved with `dns.lookup` as
   * `net.connect` does (its first address); an unknown name rejects with
   * `ENOTFOUND`.
   */
  host?: string
  port?: number
  path?: undefined
}

/** Where to connect or listen over a Unix stream socket. */
export interface UnixAddressOptions {
  /** A filesystem path of 1 to 107 bytes. */
  path: string
  host?: undefined
  port?: undefined
}

/** Where to connect or listen: `host` and `port`, or a Unix `path`. */
export interface AddressOptions {
  host?: string
  port?: number
  path?: string
}

/** Options of `TcpListener.bind`. */
export interface ListenOptions extends AddressOptions {
  /** The kernel's pending-connection queue length (`listen(2)`); default 511. */
  backlog?: number
  /**
   * On an IPv6 address, accept IPv6 connections only (`IPV6_V6ONLY`): `::`
   * then takes no IPv4 ones. Ignored on IPv4 addresses and Unix paths (as
   * `net.Server`'s). Default `false`.
   */
  ipv6Only?: boolean
  /**
   * Let several listeners (of this process or others) bind the same address
   * and port; the kernel spreads connections among them (`SO_REUSEPORT`,
   * Linux 3.9). Ignored on Unix paths. Default `false`.
   */
  reusePort?: boolean
  /**
   * Connections accepted but not yet taken by `accept()` kept at most
   * (0 to 2^31 - 1; default: `backlog`). Beyond that, connections wait in
   * the kernel's queue and cost no descriptor until taken.
   */
  readyLimit?: number
  /**
   * Connections open at once at most (as `net.Server`'s): connections
   * beyond it are accepted and closed at once (`droppedCount`). Default
   * `Infinity`; can be changed later through `listener.maxConnections`.
   */
  maxConnections?: number
  /**
   * Called with each accept that failed (`EMFILE`, `ENFILE`, `ENOBUFS`,
   * `ENOMEM`, `ECONNABORTED`...): the listener keeps listening and retries
   * after a delay growing from 1 ms to 1 s (see `errorCount`, `lastError`).
   */
  onError?: (err: ZcioError) => void
}

/** The longest Unix socket path (`sun_path` less its NUL). */
const MAX_PATH = 107

/** A checked address: `host` is numeric unless `names` was allowed. */
export type CheckedAddress = { host: string | null; port: number; path: string | null }

/**
 * `options` checked: a host and port, or a Unix path. `names`: a host may
 * be a name, to give to `resolve()`; otherwise it must be numeric.
 */
export function checkAddress(options: AddressOptions, name: string, names = false): CheckedAddress {
  validateObject(options, name)
  if (options.path !== undefined) {
    const path = options.path
    if (typeof path !== 'string') throw invalidArgType(`${name}.path`, 'of type string', path)
    if (path.length === 0 || path.includes('\0') || Buffer.byteLength(path) > MAX_PATH) {
      throw invalidArgValue(`${name}.path`, path, `must be a Unix socket path of 1 to ${MAX_PATH} bytes without NUL`)
    }
    return { host: null, port: 0, path }
  }
  const host = options.host === undefined ? '127.0.0.1' : options.host
  if (typeof host !== 'string') throw invalidArgType(`${name}.host`, 'of type string', host)
  // A zone (`fe80::1%eth0`) is not supported.
  if (host.includes('%') || (isIP(host) === 0 && !(names && isHostName(host)))) {
    const what = names ? 'must be a numeric IPv4 or IPv6 address or a host name' : 'must be a numeric IPv4 or IPv6 address (TcpListener.listen() resolves names)'
    throw invalidArgValue(`${name}.host`, host, what)
  }
  const port = options.port === undefined ? 0 : options.port
  validateInteger(port, `${name}.port`, 0, 65535)
  return { host, port, path: null }
}

/** Something `dns.lookup` may resolve: 1 to 253 bytes, no NUL, space or slash. */
function isHostName(host: string): boolean {
  return host.length > 0 && Buffer.byteLength(host) <= 253 && !/[\0\s/]/.test(host)
}

/** `a` needs no lookup: a Unix path or a numeric host. */
export function isResolved(a: CheckedAddress): boolean {
  return a.host === null || isIP(a.host) !== 0
}

/** `a` with its host name resolved (`dns.lookup`, the first address, as `net.connect`); rejects `ENOTFOUND`... as `dns` does. */
export async function resolveHost(a: CheckedAddress): Promise<CheckedAddress> {
  if (isResolved(a)) return a
  const { address } = await lookup(a.host!)
  return { ...a, host: address }
}
