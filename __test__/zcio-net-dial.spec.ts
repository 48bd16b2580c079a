// How zcio.net sockets connect, against node:net: the checks of connect()'s
// options, the 'lookup' and 'connectionAttempt*' events, family
// autoselection over several addresses (a refused one, a stalled one given
// autoSelectFamilyAttemptTimeout), the AggregateError when all fail,
// localAddress/localPort, and destroy() or an AbortSignal during a connect
// that hangs (a listener whose accept queue is full drops the SYN).

import * as nodeNet from 'node:net'
import { needs, zcio } from './support.js'
import { type Log, closed, differential, listen, stalled, turn } from './zcio-net-support.js'

const netTest = needs('bufRing')

type Lookup = NonNullable<nodeNet.TcpNetConnectOpts['lookup']>

/** A lookup that answers `addresses` a turn later (as dns.lookup would). */
function lookupOf(addresses: string[]): Lookup {
  const list = addresses.map((address) => ({ address, family: nodeNet.isIP(address) }))
  return ((_host: string, options: { all?: boolean }, cb: (...a: unknown[]) => void) => {
    setImmediate(() => (options.all ? cb(null, list) : cb(null, list[0].address, list[0].family)))
  }) as unknown as Lookup
}

/** Records what a connect does: the attempt events, then connect or error and close. */
function watch(log: Log, who: string, c: nodeNet.Socket, port?: number): Promise<void> {
  // The ports differ between the two runs.
  const text = (m: string): string => (port === undefined ? m : m.replaceAll(`:${port}`, ':PORT'))
  const shape = (e: unknown): unknown => {
    const err = e as NodeJS.ErrnoException & { errors?: Error[] }
    return { name: err.name, code: err.code, message: text(err.message), errors: err.errors?.map((x) => text(x.message)) }
  }
  c.on('lookup', (err: Error | null, address: string, family: number, host: string) => log.push([who, 'lookup', err && shape(err), address, family, host]))
  c.on('connectionAttempt', (ip: string, _port: number, family: number) => log.push([who, 'attempt', ip, family]))
  c.on('connectionAttemptFailed', (ip: string, _port: number, family: number, e: Error) => log.push([who, 'attempt failed', ip, family, (e as NodeJS.ErrnoException).code]))
  c.on('connectionAttemptTimeout', (ip: string, _port: number, family: number) => log.push([who, 'attempt timed out', ip, family]))
  c.on('connect', () => {
    log.push([who, 'connect', c.remoteAddress, (c as { autoSelectFamilyAttemptedAddresses?: string[] }).autoSelectFamilyAttemptedAddresses?.length])
    c.destroy()
  })
  c.on('error', (e) => log.push([who, 'error', shape(e)]))
  return new Promise((r) => c.on('close', (hadError) => {
    log.push([who, 'close', hadError])
    r()
  }))
}

netTest('connect() options are checked as net.connect checks them', async (t) => {
  const cases: [string, Record<string, unknown>][] = [
    ['family 5', { family: 5 }],
    ['family "4"', { family: '4' }],
    ['lookup 1', { lookup: 1 }],
    ['autoSelectFamily "yes"', { autoSelectFamily: 'yes' }],
    ['attempt timeout "x"', { autoSelectFamilyAttemptTimeout: 'x' }],
    ['attempt timeout -1', { autoSelectFamilyAttemptTimeout: -1 }],
    ['attempt timeout 1.5', { autoSelectFamilyAttemptTimeout: 1.5 }],
    ['hints "x"', { hints: 'x' }],
    ['localAddress 1', { localAddress: 1 }],
    ['localAddress "x"', { localAddress: 'x' }],
    ['localPort "x"', { localPort: 'x' }],
  ]
  await differential(t, async (net, log) => {
    // Lookup options are checked only when there is a name to look up.
    for (const host of ['127.0.0.1', 'localhost']) {
      for (const [name, o] of cases) {
        try {
          const c = net.connect({ port: 1, host, ...o } as nodeNet.NetConnectOpts)
          c.on('error', () => {})
          c.destroy()
          log.push([`${name} to ${host}`, 'accepted'])
        } catch (e) {
          const err = e as NodeJS.ErrnoException
          log.push([`${name} to ${host}`, 'threw', err.code, err.message])
        }
      }
    }
  })
})

netTest('events of a connect: numeric host, a name, a refused port, an unknown name', async (t) => {
  await differential(t, async (net, log) => {
    const { server, port } = await listen(net, {}, (s) => s.destroy())
    await watch(log, 'numeric', net.connect(port, '127.0.0.1'), port)
    await watch(log, 'by name', net.connect({ port, host: 'localhost', family: 4 }), port)
    await closed(server)
    await watch(log, 'refused', net.connect(port, '127.0.0.1'), port)
    await watch(log, 'unknown name', net.connect(80, 'no-such-host.invalid'), port)
  })
})

netTest('family autoselection: a refused address, then the next; all refused is an AggregateError', async (t) => {
  await differential(t, async (net, log) => {
    const { server, port } = await listen(net, {}, (s) => s.destroy())
    const both = ['::1', '127.0.0.1']
    await watch(log, 'v6 refused, v4 takes it', net.connect({ port, host: 'dual.test', lookup: lookupOf(both) }), port)
    await watch(log, 'v4 first', net.connect({ port, host: 'dual.test', lookup: lookupOf(['127.0.0.1', '::1']) }), port)
    await watch(log, 'autoselection off', net.connect({ port, host: 'dual.test', lookup: lookupOf(both), autoSelectFamily: false }), port)
    await closed(server)
    await watch(log, 'all refused', net.connect({ port, host: 'dual.test', lookup: lookupOf(both) }), port)
  })
})

netTest('family autoselection: a stalled address is given up after autoSelectFamilyAttemptTimeout', async (t) => {
  const times: number[] = []
  await differential(t, async (net, log) => {
    const { server, port } = await listen(net, {}, (s) => s.destroy())
    const hang = await stalled(port)
    try {
      const started = Date.now()
      const c = net.connect({ port, host: 'dual.test', lookup: lookupOf([hang.host, '127.0.0.1']), autoSelectFamilyAttemptTimeout: 100 })
      await watch(log, 'stalled first', c, port)
      times.push(Date.now() - started)
    } finally {
      hang.close()
      await closed(server)
    }
  })
  t.true(times.every((ms) => ms < 3000), `connected after ${times.join(' and ')} ms`)
})

netTest('destroy() during a connect that hangs cancels it: the socket closes at once', async (t) => {
  const { server, port } = await listen(nodeNet, {}, (s) => s.destroy())
  const hang = await stalled(port)
  try {
    await differential(t, async (net, log) => {
      const c = net.connect(port, hang.host)
      const done = watch(log, 'destroyed while connecting', c)
      await turn(50)
      log.push(['destroyed while connecting', 'connecting', c.connecting])
      c.destroy()
      await done
    })
  } finally {
    hang.close()
    await closed(server)
  }
})

netTest('localAddress and localPort: the server sees the chosen source; a port in use fails the bind', async (t) => {
  const free = await new Promise<number>((r) => {
    const s = nodeNet.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as nodeNet.AddressInfo).port
      s.close(() => r(p))
    })
  })
  await differential(t, async (net, log) => {
    const seen: number[] = []
    const { server, port } = await listen(net, {}, (s) => {
      seen.push(s.remotePort!)
      s.destroy()
    })
    const c = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.1', localPort: free })
    await watch(log, 'from a chosen port', c, port)
    await turn(20)
    log.push(['from a chosen port', 'server saw it', seen[0] === free])
    await watch(log, 'from the port in use', net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.1', localPort: port }), port)
    await closed(server)
  })
})

netTest('TcpStream.connect: an AbortSignal cancels a hanging connect with an AbortError and leaves nothing in flight', async (t) => {
  const { server, port } = await listen(nodeNet, {}, (s) => s.destroy())
  const hang = await stalled(port)
  const ring = new zcio.Ring()
  try {
    const ac = new AbortController()
    const p = zcio.TcpStream.connect(ring, { host: hang.host, port, signal: ac.signal })
    await turn(50)
    t.is(ring.inFlightCount, 1, 'the connect is in flight')
    ac.abort(new Error('enough'))
    const err = await t.throwsAsync(p)
    t.is(err?.name, 'AbortError')
    t.is((err as NodeJS.ErrnoException).code, 'ABORT_ERR')
    t.is((err as Error & { cause?: Error }).cause?.message, 'enough')
    for (let i = 0; i < 50 && ring.inFlightCount > 0; i++) await turn(5)
    t.is(ring.inFlightCount, 0)
    // Aborted before the call: rejected at once, nothing started.
    const early = await t.throwsAsync(zcio.TcpStream.connect(ring, { host: hang.host, port, signal: AbortSignal.abort() }))
    t.is(early?.name, 'AbortError')
    t.is(ring.inFlightCount, 0)
    // A Unix socket connects from no address.
    await t.throwsAsync(zcio.TcpStream.connect(ring, { path: '/nonexistent.sock', localAddress: '127.0.0.1' } as never), { code: 'ERR_INVALID_ARG_VALUE' })
  } finally {
    ring.close()
    hang.close()
    await closed(server)
  }
})
