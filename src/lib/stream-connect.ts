// The connect of `TcpStream.connect`: its own options (a source address,
// an AbortSignal), and the native connect from a checked, numeric address
// to the completion that settles it.

import { isIP } from 'node:net'
import { native, type NativeStream } from './binding.js'
import type { CheckedAddress } from './address.js'
import { abortError, errnoError, invalidArgType, invalidArgValue } from './errors.js'
import { type Ring, ringInternals } from './ring.js'
import { validateInteger, validateSignal } from './validate.js'

/** What `TcpStream.connect` takes besides the address and the stream's options. */
export interface ConnectOptions {
  /**
   * The numeric local address to connect from (`bind(2)` before the
   * connect), of the destination's family. Default: the kernel picks.
   */
  localAddress?: string
  /** The local port to connect from (0 to 65535; default 0, any free one); alone, it binds the any-address of the destination's family. */
  localPort?: number
  /**
   * Aborting it cancels a connect still under way: the promise rejects with
   * an `AbortError` (`code` `'ABORT_ERR'`) and the socket is closed.
   */
  signal?: AbortSignal
}

/** Where to bind before the connect, and the signal, checked. */
export interface CheckedConnect {
  localHost: string | null
  localPort: number
  signal: AbortSignal | undefined
}

/** Checks `options`' connect options (the object itself is checked already). */
export function checkConnectOptions(options: ConnectOptions): CheckedConnect {
  const { localAddress, localPort } = options
  if (localAddress !== undefined && (typeof localAddress !== 'string' || isIP(localAddress) === 0)) {
    if (typeof localAddress !== 'string') throw invalidArgType('options.localAddress', 'of type string', localAddress)
    throw invalidArgValue('options.localAddress', localAddress, 'must be a numeric IPv4 or IPv6 address')
  }
  if (localPort !== undefined) validateInteger(localPort, 'options.localPort', 0, 65535)
  const signal = validateSignal(options.signal, 'options.signal')
  return { localHost: localAddress ?? (localPort !== undefined ? '' : null), localPort: localPort ?? 0, signal }
}

/** A connect under way: its outcome, and how to cancel it. */
export interface Connecting {
  readonly done: Promise<NativeStream>
  /** Cancels the connect if it is still under way: `done` rejects with `reason`. */
  cancel(reason: Error): void
}

/**
 * Starts a connect to a checked, numeric address (throws at once when the
 * socket can't be made or bound). `done` resolves with the connected
 * native stream, or rejects with the connect's error (the socket closed).
 * `c.localHost` `''` binds the any-address of the destination's family.
 */
export function startConnect(ring: Ring, a: CheckedAddress, c: CheckedConnect): Connecting {
  if (a.path !== null && c.localHost !== null) {
    throw invalidArgValue('options.localAddress', c.localHost, 'is for TCP only; a Unix socket connects from no address')
  }
  const internals = ringInternals(ring)
  const localHost = c.localHost === '' ? (isIP(a.host!) === 6 ? '::' : '0.0.0.0') : c.localHost
  const [handle, slot] = native.TcpStream.connect(internals.native, a.host, a.port, a.path, localHost, c.localPort)
  let cancelled: Error | undefined
  let settled = false
  const done = new Promise<NativeStream>((resolve, reject) => {
    internals.completer.listen(slot, (result) => {
      settled = true
      if (result < 0 || cancelled !== undefined) {
        handle.close()
        reject(cancelled ?? errnoError(result, 'connect'))
      } else resolve(handle)
    })
  })
  return {
    done,
    cancel: (reason) => {
      if (settled || cancelled !== undefined) return
      cancelled = reason
      // Cancels the connect in flight: its completion comes with ECANCELED.
      handle.close()
    },
  }
}

/** `startConnect`, settled as a promise, cancelled by `c.signal`. */
export function connectNative(ring: Ring, a: CheckedAddress, c: CheckedConnect): Promise<NativeStream> {
  const signal = c.signal
  if (signal?.aborted) return Promise.reject(abortError(signal.reason))
  let started: Connecting
  try {
    started = startConnect(ring, a, c)
  } catch (e) {
    return Promise.reject(e)
  }
  if (signal === undefined) return started.done
  const onAbort = (): void => started.cancel(abortError(signal.reason))
  signal.addEventListener('abort', onAbort, { once: true })
  const off = (): void => signal.removeEventListener('abort', onAbort)
  started.done.then(off, off)
  return started.done
}
