// What a zcio.net socket needs from the modules around it, as types only:
// the members of a TcpStream it uses, the ring lease, and the dialer the
// `net` module installs with what a dial takes and reports. Kept apart so
// that the socket, the dialer and the stream modules import no circle.

import type * as dns from 'node:dns'
import type { SocketAddress } from './address.js'
import type { Flow } from './group-brand.js'

/**
 * The members of a `TcpStream` the socket uses, named here so that this
 * module does not import the stream module (which imports this one).
 */
export interface StreamPort {
  readonly closed: boolean
  readonly localAddress: SocketAddress
  readonly remoteAddress: SocketAddress
  readonly writableLength: number
  write(data: Uint8Array): boolean
  flush(): Promise<void>
  drained(): Promise<void>
  shutdown(how: 'write'): void
  close(): Promise<void>
  destroy(): Promise<void>
  setNoDelay(noDelay: boolean): unknown
}

/** A ring's receive group and its end of use, as the dialer hands them out. */
export interface Lease {
  readonly ring: object
  readonly flow: Flow
  release(): void
  /** Whether this user keeps the event loop alive (on the default ring; a given ring is the caller's to `unref()`). */
  hold(on: boolean): void
}

/** How sockets get a ring and connect: installed by the `net` module. */
export interface Dialer {
  /** The given ring and group, or the thread's default ones. */
  lease(ring: unknown, group: unknown): Lease
  /** Connects (resolving a host name, trying each of its addresses); rejects with `node:net`'s errors. */
  dial(ring: object, options: DialOptions, report: DialReport): Promise<StreamPort>
}

export type LookupAddress = { address: string; family: number }
/** `dns.lookup`'s shape: `(host, options, callback)`. */
export type LookupFunction = (
  host: string,
  options: dns.LookupOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
) => void

/** What `connect()` was asked (checked by `connectArgs`). */
export interface DialOptions {
  host?: string
  port?: number
  path?: string
  lookup?: LookupFunction
  family?: number
  hints?: number
  autoSelectFamily?: boolean
  autoSelectFamilyAttemptTimeout?: number
  localAddress?: string
  localPort?: number
}

/** The socket a dial reports to. */
export interface DialReport {
  emit(event: string, ...args: unknown[]): boolean
  /** The addresses tried (`ip:port`), with family autoselection over several addresses. */
  attempted(addresses: string[]): void
  /** Sets (or clears) what cancels the attempt under way when the socket is destroyed. */
  onCancel(cancel: ((reason: Error) => void) | undefined): void
  /** Whether the socket was destroyed (the dial ends without reporting more). */
  cancelled(): boolean
}

/** Where and how `connect()` connects, as `node:net`'s `NetConnectOpts`. */
export interface ConnectOptions {
  /** The port (with `host`), 1 to 65535. */
  port?: number | string
  /** A numeric address or a name (default `'localhost'`). */
  host?: string
  /** A Unix socket path, instead of a port. */
  path?: string
  /** The numeric local address to connect from. */
  localAddress?: string
  /** The local port to connect from. */
  localPort?: number
  /** The address family a name resolves to: 4, 6, or 0 (both). */
  family?: number
  /** `getaddrinfo` hints (`dns.ADDRCONFIG`...). */
  hints?: number
  /** Resolves names instead of `dns.lookup` (same signature). */
  lookup?: LookupFunction
  /** Try every address of a name, families interleaved (default: `net.getDefaultAutoSelectFamily()`, true in Node 20+). */
  autoSelectFamily?: boolean
  /** Milliseconds an attempt gets before the next address is tried (at least 10; default 250). */
  autoSelectFamilyAttemptTimeout?: number
  /** `setTimeout(timeout)` at once. */
  timeout?: number
}
