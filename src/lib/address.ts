// Addresses: where to connect or listen, and what a socket reports.

import { isIP } from 'node:net'
import type { NativeSocketAddress } from './binding.js'
import type { ZcioError } from './errors.js'
import { invalidArgType, invalidArgValue } from './errors.js'
import { validateInteger, validateObject } from './validate.js'

/** `{ family: 'IPv4' | 'IPv6', address, port }`, or `{ family: 'unix', path }`. */
export type SocketAddress = NativeSocketAddress

/** Where to connect or listen: `host` (a numeric address, default 127.0.0.1) and `port`, or a Unix `path`. */
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

/** `options` checked: a numeric host and port, or a Unix path. */
export function checkAddress(options: AddressOptions, name: string): { host: string | null; port: number; path: string | null } {
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
  // Names are not resolved; a zone (`fe80::1%eth0`) is not supported either.
  if (isIP(host) === 0 || host.includes('%')) {
    throw invalidArgValue(`${name}.host`, host, 'must be a numeric IPv4 or IPv6 address')
  }
  const port = options.port === undefined ? 0 : options.port
  validateInteger(port, `${name}.port`, 0, 65535)
  return { host, port, path: null }
}
