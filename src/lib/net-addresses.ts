// A zcio.net socket's addresses in `net.Socket`'s terms, read from the
// kernel on first use (one system call each, none for a socket that never
// asks) and kept.

import type { SocketAddress } from './address.js'
import type { StreamPort } from './net-port.js'

/** An IP address as `net.Socket` reports it; all undefined for a Unix socket or before the connect. */
export type Addr = { address?: string; port?: number; family?: string }

function address(get: () => SocketAddress): Addr {
  try {
    const a = get()
    if (a.family === 'unix') return {}
    return { address: a.address ?? undefined, port: a.port ?? undefined, family: a.family }
  } catch {
    // Closed, or the peer is gone: nothing to report.
    return {}
  }
}

/** The remote and local address of a socket's stream. */
export class Addresses {
  #stream: StreamPort | undefined
  #remote: Addr | undefined
  #local: Addr | undefined

  /** The stream the addresses are of, once connected. */
  of(stream: StreamPort): void {
    this.#stream = stream
  }

  get remote(): Addr {
    if (this.#remote === undefined && this.#stream !== undefined) this.#remote = address(() => this.#stream!.remoteAddress)
    return this.#remote ?? {}
  }

  get local(): Addr {
    if (this.#local === undefined && this.#stream !== undefined) this.#local = address(() => this.#stream!.localAddress)
    return this.#local ?? {}
  }
}
