// zcio.net against node:net where Node's own net tests found them apart:
// reconnecting a closed socket, writes made while connecting (their
// callbacks' order, their failure when the socket is destroyed first),
// bytesWritten of a large write, listen() binding in the call, the
// exports, argument checks, captureRejections, what keeps the process
// alive, and the small properties (socket.server, socket.timeout). Each
// scenario runs on both modules; node:net is the oracle.

import test from 'ava'
import { execFile } from 'node:child_process'
import { EventEmitter } from 'node:events'
import * as nodeNet from 'node:net'
import * as path from 'node:path'
import { needs } from './support.js'
import { type Log, type Net, closed, differential, listen, turn, zcioNet } from './zcio-net-support.js'

const netTest = needs('bufRing')

const codeOf = (f: () => unknown): string => {
  try {
    f()
    return 'no throw'
  } catch (e) {
    return `${(e as Error).name} ${(e as NodeJS.ErrnoException).code}`
  }
}

netTest('a socket closed once connects again (connect() after close)', async (t) => {
  await differential(t, async (net: Net, log: Log) => {
    const { server, port } = await listen(net, {}, (s) => s.end('hi'))
    const c = net.connect(port, '127.0.0.1')
    c.on('data', (d: Buffer) => log.push(['c', 'data', String(d)]))
    await new Promise<void>((done) => {
      let n = 0
      c.on('close', () => {
        log.push(['c', 'close', ++n, c.bytesRead, c.bytesWritten, c.pending])
        if (n === 1) c.connect(port, '127.0.0.1', () => log.push(['c', 'reconnected']))
        else done()
      })
    })
    await closed(server)
  })
})

netTest("writes made while connecting: callbacks after 'connect'; destroyed first, they fail with ERR_SOCKET_CLOSED_BEFORE_CONNECTION", async (t) => {
  await differential(t, async (net: Net, log: Log) => {
    const { server, port } = await listen(net, {}, (s) => s.resume().on('end', () => s.end()))
    const c = net.connect(port, '127.0.0.1', () => log.push(['c', 'connect']))
    c.write('queued while connecting', () => log.push(['c', 'write cb', c.bytesWritten]))
    c.end('!', () => log.push(['c', 'end cb']))
    await new Promise((r) => c.on('close', r))
    const d = net.connect(port, '127.0.0.1')
    d.on('error', (e: NodeJS.ErrnoException) => log.push(['d', 'error', e.code]))
    d.write('foo', (e?: Error | null) => log.push(['d', 'write cb', (e as NodeJS.ErrnoException | undefined)?.code]))
    d.destroy()
    await new Promise((r) => d.on('close', r))
    await turn(20)
    await closed(server)
  })
})

netTest('bytesWritten counts a large write once while it is sent', async (t) => {
  await differential(t, async (net: Net, log: Log) => {
    const { server, port } = await listen(net, {}, (s) => s.resume())
    const c = net.connect(port, '127.0.0.1')
    await new Promise((r) => c.on('connect', r))
    c.end(Buffer.alloc(10_000_000), () => log.push(['c', 'end cb', c.bytesWritten]))
    log.push(['c', 'after end()', c.bytesWritten])
    await new Promise((r) => c.on('close', r))
    server.close()
  })
})

netTest("listen() without a host binds in the call; with one, after its lookup (close() in that tick: not running)", async (t) => {
  await differential(t, async (net: Net, log: Log) => {
    const a = net.createServer()
    a.listen(0)
    log.push(['a', 'listening at once', a.listening, (a.address() as nodeNet.AddressInfo | null)?.family])
    await new Promise((r) => a.on('listening', r))
    await closed(a)
    const b = net.createServer()
    b.on('listening', () => log.push(['b', 'listening']))
    b.listen(0, '127.0.0.1')
    await new Promise<void>((r) =>
      b.close((e?: Error) => {
        log.push(['b', 'close cb', (e as NodeJS.ErrnoException | undefined)?.code])
        r()
      }),
    )
    await turn(10)
  })
})

netTest("connect(server.address()): the family is read as the lookup's ('IPv4' is 4)", async (t) => {
  await differential(t, async (net: Net, log: Log) => {
    const { server } = await listen(net, {}, (s) => s.end())
    const c = net.connect(server.address() as unknown as nodeNet.NetConnectOpts)
    c.resume()
    c.on('connect', () => log.push(['c', 'connect']))
    c.on('error', (e: NodeJS.ErrnoException) => log.push(['c', 'error', e.code]))
    await new Promise((r) => c.on('close', r))
    await closed(server)
  })
})

netTest('a lookup that names a bad family fails the connect with ERR_INVALID_ADDRESS_FAMILY', async (t) => {
  await differential(t, async (net: Net, log: Log) => {
    const lookup = (_h: string, _o: unknown, cb: (e: null, a: string, f: number) => void): void => cb(null, '127.0.0.1', 100)
    const c = net.connect({ host: 'localhost', port: 1, lookup, autoSelectFamily: false } as nodeNet.NetConnectOpts)
    c.on('error', (e: NodeJS.ErrnoException) => log.push(['c', 'error', e.code, e.message]))
    await new Promise((r) => c.on('close', r))
  })
})

netTest('argument checks as node:net: ports, objectMode, hints, listen(true), close(non-function)', async (t) => {
  await differential(t, async (net: Net, log: Log) => {
    const tries: [string, () => unknown][] = [
      ['port 0', () => net.connect({ port: 0, host: '127.0.0.1' }).on('error', () => {})],
      ['port hex', () => net.connect({ port: '0x50' as unknown as number, host: '127.0.0.1' }).on('error', () => {})],
      ['port true', () => net.connect({ port: true as unknown as number })],
      ['port null', () => net.connect({ port: null as unknown as number })],
      ['port -1', () => net.connect({ port: -1 })],
      ['objectMode', () => new net.Socket({ objectMode: true } as nodeNet.SocketConstructorOpts)],
      ['bad hints', () => net.connect({ port: 80, host: 'localhost', hints: 98 } as nodeNet.NetConnectOpts)],
      ['listen(true)', () => net.createServer().listen(true as unknown as number)],
      ['close(bad)', () => net.createServer().close('bad' as unknown as () => void)],
      ['listen fd -1', () => net.createServer().listen({ fd: -1 })],
      ['listen {}', () => net.createServer().listen({})],
    ]
    for (const [name, f] of tries) log.push(['x', name, codeOf(f)])
    log.push(['x', 'prototype bytesWritten', (net.Socket.prototype as { bytesWritten?: number }).bytesWritten])
    await turn(50)
  })
})

netTest("resetAndDestroy() of a socket never connected emits ERR_SOCKET_CLOSED; setTimeout() after destroy() does nothing; setTimeout keeps socket.timeout assignable", async (t) => {
  await differential(t, async (net: Net, log: Log) => {
    const s = new net.Socket()
    s.on('error', (e: NodeJS.ErrnoException) => log.push(['s', 'error', e.code]))
    s.resetAndDestroy()
    await new Promise((r) => s.on('close', r))
    const u = new net.Socket()
    u.on('timeout', () => log.push(['u', 'timeout']))
    u.destroy()
    u.setTimeout(5)
    await turn(30)
    const v = new net.Socket()
    ;(v as { timeout?: number }).timeout = 0
    log.push(['v', 'timeout', v.timeout])
    v.destroy()
  })
})

netTest("after the peer's end and this side's, write() fails with EPIPE; accepted sockets name their server", async (t) => {
  await differential(t, async (net: Net, log: Log) => {
    let accepted: nodeNet.Socket | undefined
    const { server, port } = await listen(net, {}, (s) => {
      accepted = s
      s.end()
    })
    const c = net.connect(port, '127.0.0.1', () => c.end())
    const done = new Promise((r) => c.on('close', r))
    c.on('error', (e: NodeJS.ErrnoException) => log.push(['c', 'error', e.code, e.message]))
    c.on('end', () => {
      const ret = c.write('late', (e?: Error | null) => log.push(['c', 'write cb', (e as NodeJS.ErrnoException | undefined)?.code]))
      log.push(['c', 'write returned', ret])
    })
    c.resume()
    await done
    await turn(10)
    log.push(['s', 'server', (accepted as unknown as { server: unknown }).server === server])
    await closed(server)
  })
})

netTest("with captureRejections, a rejected async 'connection' listener destroys that socket with the error", async (t) => {
  const before = EventEmitter.captureRejections
  EventEmitter.captureRejections = true
  try {
    await differential(t, async (net: Net, log: Log) => {
      const server = net.createServer(async (sock) => {
        sock.on('error', (e: Error) => log.push(['sock', 'error', e.message]))
        throw new Error('kaboom')
      })
      server.on('error', (e: Error) => log.push(['server', 'error', e.message]))
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
      const c = net.connect((server.address() as nodeNet.AddressInfo).port, '127.0.0.1')
      c.on('error', () => {})
      c.resume()
      await new Promise((r) => c.on('close', r))
      log.push(['c', 'closed'])
      await closed(server)
    })
  } finally {
    EventEmitter.captureRejections = before
  }
})

netTest('the exports node:net code uses: Stream, BlockList, SocketAddress, the autoselection defaults (shared with node:net)', (t) => {
  const z = zcioNet as unknown as Record<string, unknown>
  t.is(z.Stream, z.Socket)
  t.is(z.BlockList, nodeNet.BlockList)
  t.is(z.SocketAddress, nodeNet.SocketAddress)
  const before = nodeNet.getDefaultAutoSelectFamilyAttemptTimeout()
  ;(z.setDefaultAutoSelectFamilyAttemptTimeout as (n: number) => void)(321)
  t.is(nodeNet.getDefaultAutoSelectFamilyAttemptTimeout(), 321)
  nodeNet.setDefaultAutoSelectFamilyAttemptTimeout(before)
  t.is((z.getDefaultAutoSelectFamily as () => boolean)(), nodeNet.getDefaultAutoSelectFamily())
})

/** Runs `script` (with `net` as the module named) in a child; what it prints. */
function child(mod: 'node' | 'zcio', script: string): Promise<string> {
  const prelude = mod === 'node' ? "const net = require('node:net');" : `const net = require(${JSON.stringify(path.resolve('.'))}).net;`
  return new Promise((resolve) =>
    execFile(process.execPath, ['-e', prelude + script], { timeout: 20_000 }, (_e, out, err) => resolve(`${out}${err ? `stderr: ${err}` : ''}`)),
  )
}

netTest('a connected socket paused before it connected, with nothing to send, lets the process exit (as node:net)', async (t) => {
  const script = `
    const t0 = Date.now();
    process.on('exit', () => console.log(Date.now() - t0 < 1500 ? 'exited' : 'late'));
    const server = net.createServer((conn) => conn.unref()).listen(0, '127.0.0.1', () => {
      net.connect(server.address().port, '127.0.0.1').pause();
      setTimeout(() => { console.log('still alive'); process.exit(); }, 3000).unref();
    });
    server.unref();`
  const [oracle, ours] = await Promise.all([child('node', script), child('zcio', script)])
  t.is(oracle.trim(), 'exited')
  t.is(ours.trim(), oracle.trim())
})

netTest('destroy() in the tick of connect() makes no connection', async (t) => {
  await differential(t, async (net: Net, log: Log) => {
    let got = 0
    const { server, port } = await listen(net, {}, (s) => {
      got++
      s.destroy()
    })
    const c = net.connect(port, '127.0.0.1')
    c.on('close', (hadError: boolean) => log.push(['c', 'close', hadError]))
    c.destroy()
    await turn(100)
    log.push(['server', 'connections', got])
    await closed(server)
  })
})

netTest('net.Socket() and net.Server() without new make instances; classes extend them', (t) => {
  const z = zcioNet as unknown as { Socket: (o?: object) => nodeNet.Socket; Server: () => nodeNet.Server }
  const s = z.Socket()
  t.true(s instanceof zcioNet.Socket)
  const server = z.Server()
  t.true(server instanceof zcioNet.Server)
  class Mine extends zcioNet.Socket {}
  const m = new Mine()
  t.true(m instanceof zcioNet.Socket)
  t.is(typeof m.connect, 'function')
  s.destroy()
  m.destroy()
})

netTest("onread: reads go into the given buffer (or one a function returns) and its callback, no 'data'; false or pause() stops until resume()", async (t) => {
  const message = Buffer.alloc(100_000)
  for (let i = 0; i < message.length; i++) message[i] = (i * 7) & 0xff
  await differential(t, async (net: Net, log: Log) => {
    for (const mode of ['static', 'function', 'return false', 'pause']) {
      const { server, port } = await listen(net, {}, (s) => s.end(message))
      const got: Buffer[] = []
      const own = Buffer.alloc(4096)
      let stops = 0
      const c = net.connect({
        port,
        host: '127.0.0.1',
        onread: {
          buffer: mode === 'function' ? () => Buffer.alloc(1000) : own,
          callback(this: nodeNet.Socket, n: number, buf: Uint8Array) {
            got.push(Buffer.from(buf.subarray(0, n)))
            if (mode === 'static' && buf !== own) log.push([mode, 'not the given buffer'])
            if ((mode === 'return false' || mode === 'pause') && stops < 5) {
              stops++
              setTimeout(() => this.resume(), 5)
              if (mode === 'pause') this.pause()
              else return false
            }
            return undefined
          },
        },
      } as nodeNet.NetConnectOpts)
      c.on('data', () => log.push([mode, 'data event']))
      await new Promise((r) => c.on('end', r))
      const all = Buffer.concat(got)
      log.push([mode, 'end', all.length, all.equals(message)])
      c.destroy()
      await closed(server)
    }
  })
})

// Review findings: a reconnect after destroy() while connecting made a
// second connection and the old receive's end closed the new connection;
// onread's stop outlived a reconnect; 'end' overtook held onread bytes.
netTest('reconnect after destroy() mid-connect makes one connection, and the old one reports nothing to the new', async (t) => {
  await differential(t, async (net: Net, log: Log) => {
    let conns = 0
    const { server, port } = await listen(net, {}, (s) => {
      conns++
      s.on('error', () => {})
      s.on('data', (d: Buffer) => s.write(d))
    })
    const c = net.connect(port, '127.0.0.1')
    c.destroy()
    let n = 0
    await new Promise<void>((done) => {
      c.on('close', () => {
        log.push(['c', 'close', n])
        if (n++ > 0) return done()
        c.connect(port, '127.0.0.1', () => {
          log.push(['c', 'connect'])
          c.write('hello')
        })
      })
      c.on('data', (d: Buffer) => {
        log.push(['c', 'data', String(d)])
        c.destroy()
      })
      c.on('end', () => log.push(['c', 'end']))
    })
    await turn(50)
    log.push(['server', 'connections', conns])
    await closed(server)
  })
})

netTest("onread: a stop outlives no reconnect; 'end' waits for held bytes and for resume(); an empty buffer is ENOBUFS", async (t) => {
  await differential(t, async (net: Net, log: Log) => {
    const { server, port } = await listen(net, {}, (s) => s.on('error', () => {}).end('abcdefgh'))
    let stopOnce = true
    const got: string[] = []
    const c = net.connect({
      port,
      host: '127.0.0.1',
      onread: {
        buffer: Buffer.alloc(4),
        callback: (n: number, buf: Buffer) => {
          got.push(buf.toString('latin1', 0, n))
          if (!stopOnce) return true
          stopOnce = false
          setTimeout(() => {
            log.push(['c', 'resume', got.join('')])
            c.resume()
          }, 30)
          return false
        },
      },
    } as nodeNet.NetConnectOpts)
    c.on('end', () => log.push(['c', 'end', got.join('')]))
    await new Promise((r) => c.on('close', r))
    const z = net.connect({ port, host: '127.0.0.1', onread: { buffer: Buffer.alloc(0), callback: () => true } } as nodeNet.NetConnectOpts)
    z.on('error', (e: NodeJS.ErrnoException) => log.push(['z', 'error', e.code]))
    await new Promise((r) => z.on('close', r))
    await closed(server)
  })
})

netTest("pause() in a 'connect' listener: the socket does not read, and lets the process exit (as node:net)", async (t) => {
  const script = `
    const server = net.createServer((conn) => conn.unref()).listen(0, '127.0.0.1', () => {
      const c = net.connect(server.address().port, '127.0.0.1', () => c.pause());
      setTimeout(() => { console.log('still alive'); process.exit(); }, 3000).unref();
    });
    server.unref();
    process.on('exit', () => console.log('exited'));`
  const [oracle, ours] = await Promise.all([child('node', script), child('zcio', script)])
  t.is(oracle.trim(), 'exited')
  t.is(ours.trim(), oracle.trim())
})
