// Addresses: where to connect or listen, and what a socket reports.

import type { NativeSocketAddress } from './binding.js'
import { invalidArgType } from './errors.js'
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
  /** Pending-connection queue length; default 511. */
  backlog?: number
}

/** `options` checked: a numeric host and port, or a Unix path. */
export function checkAddress(options: AddressOptions, name: string): { host: string | null; port: number; path: string | null } {
  validateObject(options, name)
  if (options.path !== undefined) {
    if (typeof options.path !== 'string') throw invalidArgType(`${name}.path`, 'of type string', options.path)
    return { host: null, port: 0, path: options.path }
  }
  const host = options.host ?? '127.0.0.1'
  if (typeof host !== 'string') throw invalidArgType(`${name}.host`, 'of type string', host)
  const port = options.port ?? 0
  validateInteger(port, `${name}.port`, 0, 65535)
  return { host, port, path: null }
}
