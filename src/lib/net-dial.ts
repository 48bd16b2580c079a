// How a zcio.net socket connects, as `net.connect` does: a Unix path at
// once; a numeric host at once; a name through `lookup` (dns.lookup or the
// caller's), then, with family autoselection (Node's default), each address
// in turn, families interleaved, each attempt given
// `autoSelectFamilyAttemptTimeout` ms before the next (the last one runs
// until it ends), with Node's events: 'lookup', 'connectionAttempt',
// 'connectionAttemptFailed', 'connectionAttemptTimeout'.

import * as dns from 'node:dns'
import * as nodeNet from 'node:net'
import { getDefaultAutoSelectFamily, isIP } from 'node:net'
import { zcioError } from './errors.js'
import { systemError } from './net-errors.js'
import type { DialOptions, DialReport, LookupAddress, LookupFunction, StreamPort } from './net-port.js'
import type { Ring } from './ring.js'
import { TcpStream } from './stream.js'
import { type Connecting, checkConnectOptions, startConnect } from './stream-connect.js'

/** Node's floor of `autoSelectFamilyAttemptTimeout`. */
const MIN_ATTEMPT_MS = 10
/** Node's default of `autoSelectFamilyAttemptTimeout` (`net.getDefaultAutoSelectFamilyAttemptTimeout()` where it exists). */
const DEFAULT_ATTEMPT_MS = 250

function defaultAttemptMs(): number {
  const get = (nodeNet as { getDefaultAutoSelectFamilyAttemptTimeout?: () => number }).getDefaultAutoSelectFamilyAttemptTimeout
  return typeof get === 'function' ? get() : DEFAULT_ATTEMPT_MS
}

function resolve(lookup: LookupFunction, host: string, port: number, options: dns.LookupOptions): Promise<LookupAddress[]> {
  return new Promise((done, fail) => {
    lookup(host, options, (err, address, family) => {
      if (err) return fail(err)
      const list = Array.isArray(address) ? address : [{ address, family: family ?? isIP(address) }]
      for (const a of list) {
        if (isIP(a.address) === 0) return fail(Object.assign(new TypeError(`Invalid IP address: ${String(a.address)}`), { code: 'ERR_INVALID_IP_ADDRESS' }))
        // A lookup of the caller's may name any family (Node's check).
        if (a.family !== 4 && a.family !== 6) {
          return fail(Object.assign(new RangeError(`Invalid address family: ${String(a.family)} ${host}:${port}`), { code: 'ERR_INVALID_ADDRESS_FAMILY', host, port }))
        }
      }
      done(list)
    })
  })
}

/** IPv6 and IPv4 addresses alternated, starting with the family of the first (as Node orders them). */
function interleave(list: LookupAddress[]): LookupAddress[] {
  const first = isIP(list[0].address)
  const same = list.filter((a) => isIP(a.address) === first)
  const other = list.filter((a) => isIP(a.address) !== first)
  const out: LookupAddress[] = []
  for (let i = 0; i < Math.max(same.length, other.length); i++) {
    if (i < same.length) out.push(same[i])
    if (i < other.length) out.push(other[i])
  }
  return out
}

/** Why an attempt was given up on (not reported: the next address is tried). */
const TIMED_OUT = new Error('connection attempt timed out')

/**
 * One connect, cancelled when the socket is destroyed or after `ms` (then
 * `'timeout'`). `started` runs once the socket is made and bound: a failed
 * bind is no connection attempt (Node reports none).
 */
async function attempt(ring: Ring, address: string, o: DialOptions, report: DialReport, ms: number | undefined, started: () => void): Promise<StreamPort | 'timeout'> {
  let connecting: Connecting
  try {
    const c = checkConnectOptions({ localAddress: o.localAddress, localPort: o.localPort })
    connecting = startConnect(ring, { host: address, port: o.port!, path: null }, c)
  } catch (e) {
    // Where it was to connect from, as net.Socket reports a failed bind.
    throw systemError(e, (e as { syscall?: string }).syscall, { address: o.localAddress ?? (isIP(address) === 6 ? '::' : '0.0.0.0'), port: o.localPort ?? 0 })
  }
  started()
  report.onCancel((reason) => connecting.cancel(reason))
  const timer = ms === undefined ? undefined : setTimeout(() => connecting.cancel(TIMED_OUT), ms)
  try {
    return new TcpStream(ring, await connecting.done)
  } catch (e) {
    if (e === TIMED_OUT) return 'timeout'
    if (report.cancelled()) throw e
    throw systemError(e, 'connect', { address, port: o.port })
  } finally {
    clearTimeout(timer)
    report.onCancel(undefined)
  }
}

/** Connects as `net.connect` would (see the file's head); rejects with Node's errors. */
export async function dial(ring: object, o: DialOptions, report: DialReport): Promise<StreamPort> {
  const r = ring as Ring
  // The defaults as they are at connect() (net.connect reads them there).
  const autoSelect = o.autoSelectFamily ?? getDefaultAutoSelectFamily()
  const attemptMs = o.autoSelectFamilyAttemptTimeout ?? defaultAttemptMs()
  // Events come a tick later, as Node's: the caller's listeners are on by then.
  await new Promise((next) => process.nextTick(next))
  // Destroyed in the tick of connect(): no connection is made (net.Socket's).
  if (report.cancelled()) throw zcioError('ERR_SOCKET_CLOSED', 'Socket is closed')
  if (o.path !== undefined) {
    try {
      const connecting = startConnect(r, { host: null, port: 0, path: o.path }, checkConnectOptions({}))
      report.onCancel((reason) => connecting.cancel(reason))
      return new TcpStream(r, await connecting.done)
    } catch (e) {
      throw report.cancelled() ? e : systemError(e, 'connect', { address: o.path })
    }
  }
  const host = o.host ?? 'localhost'
  const port = o.port!
  const one = async (address: string): Promise<StreamPort> => {
    const family = isIP(address)
    let began = false
    try {
      return (await attempt(r, address, o, report, undefined, () => {
        began = true
        report.emit('connectionAttempt', address, port, family)
      })) as StreamPort
    } catch (e) {
      if (began && !report.cancelled()) report.emit('connectionAttemptFailed', address, port, family, e)
      throw e
    }
  }
  if (isIP(host) !== 0) return one(host)
  const family = o.family ?? 0
  const multiple = autoSelect && family === 0
  const lookupOptions: dns.LookupOptions = { family, hints: o.hints ?? 0, ...(multiple ? { all: true } : {}) }
  let list: LookupAddress[]
  try {
    list = await resolve(o.lookup ?? (dns.lookup as unknown as LookupFunction), host, port, lookupOptions)
  } catch (e) {
    report.emit('lookup', e, undefined, undefined, host)
    throw e
  }
  if (list.length === 0) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND', syscall: 'getaddrinfo', hostname: host })
  if (!multiple || list.length === 1) {
    report.emit('lookup', null, list[0].address, list[0].family, host)
    return one(list[0].address)
  }
  // As Node: one 'lookup' per address found.
  for (const a of list) report.emit('lookup', null, a.address, a.family, host)
  const order = interleave(list)
  const tried: string[] = []
  report.attempted(tried)
  const errors: Error[] = []
  const ms = Math.max(attemptMs, MIN_ATTEMPT_MS)
  for (let i = 0; i < order.length; i++) {
    const { address } = order[i]
    const fam = isIP(address)
    let began = false
    try {
      const got = await attempt(r, address, o, report, i < order.length - 1 ? ms : undefined, () => {
        began = true
        tried.push(`${address}:${port}`)
        report.emit('connectionAttempt', address, port, fam)
      })
      if (got !== 'timeout') return got
      report.emit('connectionAttemptTimeout', address, port, fam)
    } catch (e) {
      if (report.cancelled()) throw e
      if (began) report.emit('connectionAttemptFailed', address, port, fam, e)
      errors.push(e as Error)
    }
  }
  if (errors.length === 0) throw zcioError('ERR_INTERNAL_ASSERTION', 'no connection attempt ended')
  if (errors.length === 1) throw errors[0]
  // As Node: every attempt's error, and the first one's code.
  const all = new AggregateError(errors)
  ;(all as { code?: string }).code = (errors[0] as { code?: string }).code
  throw all
}
