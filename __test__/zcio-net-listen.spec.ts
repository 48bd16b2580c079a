// zcio.net's listen() options against node:net's: how an options object is
// read (and refused), ipv6Only, signal, readableAll/writableAll on Unix
// sockets; and what node:net 20 lacks or zcio.net does not do: reusePort,
// listen({ fd }).

import { once } from 'node:events'
import * as fs from 'node:fs'
import type * as nodeNet from 'node:net'
import { needs } from './support.js'
import { type Net, closed, differential, socketPath, turn, zcioNet } from './zcio-net-support.js'

const netTest = needs('bufRing')

/** What listen(options) did: its synchronous throw, or its 'error', or the family it listens on. */
async function tryListen(net: Net, options: unknown): Promise<unknown[]> {
  const s = net.createServer()
  try {
    s.listen(options as nodeNet.ListenOptions)
  } catch (e) {
    const err = e as NodeJS.ErrnoException
    return ['threw', err.code, err.message]
  }
  const outcome = await Promise.race([
    once(s, 'listening').then(() => {
      const a = s.address()
      return ['listening', typeof a === 'string' ? 'a path' : a?.family]
    }),
    once(s, 'error').then(([e]) => ['error', (e as NodeJS.ErrnoException).code]),
  ])
  if (s.listening) await closed(s)
  return outcome
}

netTest('an options object is read and refused as net.Server reads it', async (t) => {
  const cases: [string, unknown][] = [
    ['empty', {}],
    ['host only', { host: '127.0.0.1' }],
    ['backlog only', { backlog: 5 }],
    ['port null', { port: null, host: '127.0.0.1' }],
    ['port undefined', { port: undefined, host: '127.0.0.1' }],
    ['port string', { port: '0', host: '127.0.0.1' }],
    ['port not numeric', { port: 'abc' }],
    ['port negative', { port: -1 }],
    ['port too large', { port: 65536 }],
    ['port boolean', { port: true }],
    ['path empty', { path: '' }],
    ['path null', { path: null }],
    ['path number', { path: 5 }],
    ['signal not a signal', { port: 0, host: '127.0.0.1', signal: 5 }],
    ['ipv6Only on IPv4 is ignored', { port: 0, host: '127.0.0.1', ipv6Only: true }],
    ['exclusive is accepted', { port: 0, host: '127.0.0.1', exclusive: true }],
  ]
  await differential(t, async (net, log) => {
    for (const [name, options] of cases) log.push([name, ...(await tryListen(net, options))])
  })
})

netTest('ipv6Only: `::` then takes IPv6 connections only', async (t) => {
  const probe = zcioNet.createServer()
  const v6 = await new Promise<boolean>((r) => {
    probe.once('error', () => r(false))
    probe.listen({ host: '::1', port: 0 }, () => probe.close(() => r(true)))
  })
  if (!v6) {
    t.log('no IPv6 loopback here: ipv6Only not checked')
    return t.pass()
  }
  const attempt = (net: Net, host: string, port: number): Promise<string> =>
    new Promise((r) => {
      const c = net.connect(port, host)
      c.on('connect', () => {
        c.destroy()
        r('connected')
      })
      c.on('error', (e: NodeJS.ErrnoException) => r(e.code ?? 'error'))
    })
  await differential(t, async (net, log) => {
    for (const ipv6Only of [true, false]) {
      const s = net.createServer((c) => c.destroy())
      await new Promise<void>((r) => s.listen({ host: '::', port: 0, ipv6Only }, r))
      const port = (s.address() as nodeNet.AddressInfo).port
      log.push([`ipv6Only ${ipv6Only}`, 'IPv6', await attempt(net, '::1', port)])
      log.push([`ipv6Only ${ipv6Only}`, 'IPv4', await attempt(net, '127.0.0.1', port)])
      await closed(s)
    }
  })
})

netTest('signal: an abort closes the server; one aborted before listen() never listens', async (t) => {
  await differential(t, async (net, log) => {
    const early = new AbortController()
    early.abort()
    const a = net.createServer()
    a.on('listening', () => log.push(['aborted before', 'listening']))
    a.on('close', () => log.push(['aborted before', 'close', a.listening]))
    a.listen({ port: 0, host: '127.0.0.1', signal: early.signal })
    await turn(50)

    const later = new AbortController()
    const b = net.createServer()
    b.on('close', () => log.push(['aborted later', 'close', b.listening]))
    await new Promise<void>((r) => b.listen({ port: 0, host: '127.0.0.1', signal: later.signal }, r))
    log.push(['aborted later', 'listening', b.listening])
    later.abort()
    await once(b, 'close')
    // The signal is let go with the server: aborting twice does nothing more.
    later.abort()
    await turn(10)
  })
})

netTest('readableAll / writableAll give group and others read and write permission on a Unix socket file', async (t) => {
  const old = process.umask(0o077)
  try {
    await differential(t, async (net, log) => {
      for (const [name, flags] of [
        ['neither', {}],
        ['readableAll', { readableAll: true }],
        ['writableAll', { writableAll: true }],
        ['both', { readableAll: true, writableAll: true }],
      ] as const) {
        const path = socketPath('mode')
        const s = net.createServer()
        await new Promise<void>((r) => s.listen({ path, ...flags }, r))
        // The bits for group and others: the owner's differ between Node
        // versions (20 keeps them, 22+ sets the mode to just the added bits).
        log.push([name, (fs.statSync(path).mode & 0o077).toString(8)])
        await closed(s)
      }
    })
  } finally {
    process.umask(old)
  }
})

netTest('reusePort: two servers share a port and both take connections; without it EADDRINUSE', async (t) => {
  const served: string[] = []
  const make = (name: string): nodeNet.Server => zcioNet.createServer((c) => {
    served.push(name)
    c.end(name)
  })
  const a = make('a')
  await new Promise<void>((r) => a.listen({ port: 0, host: '127.0.0.1', reusePort: true }, r))
  const port = (a.address() as nodeNet.AddressInfo).port
  const b = make('b')
  await new Promise<void>((r) => b.listen({ port, host: '127.0.0.1', reusePort: true }, r))
  t.is((b.address() as nodeNet.AddressInfo).port, port)
  const c = make('c')
  const [err] = (await Promise.all([once(c, 'error'), c.listen({ port, host: '127.0.0.1' })]))[0] as [NodeJS.ErrnoException]
  t.is(err.code, 'EADDRINUSE')
  t.is(err.message, `listen EADDRINUSE: address already in use 127.0.0.1:${port}`)
  // The kernel spreads connections by a hash of the peer's port: enough of them reach both.
  for (let i = 0; i < 64 && !(served.includes('a') && served.includes('b')); i++) {
    const s = zcioNet.connect(port, '127.0.0.1')
    s.resume()
    s.on('error', () => {})
    await once(s, 'close')
  }
  t.true(served.includes('a') && served.includes('b'), `served by ${[...new Set(served)].join(', ')}`)
  await Promise.all([closed(a), closed(b)])
})

netTest('listen({ fd }) and listen(handle) are refused with ERR_ZCIO_UNSUPPORTED, not taken for a port', (t) => {
  for (const options of [{ fd: 3 }, { handle: {} }, { _handle: {} }]) {
    const s = zcioNet.createServer()
    t.throws(() => s.listen(options as nodeNet.ListenOptions), { code: 'ERR_ZCIO_UNSUPPORTED' })
    t.false(s.listening)
  }
})
