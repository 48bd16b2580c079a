// zcio.net against node:net: each scenario runs on both (server and client
// on one module) and the events each side saw, their order and the data
// must be the same. Written from node:net's documentation.

import test from 'ava'
import { once } from 'node:events'
import type * as nodeNet from 'node:net'
import { needs } from './support.js'
import { type Log, type Net, closed, differential, listen, record, socketClosed, socketPath, turn } from './zcio-net-support.js'

const netTest = needs('bufRing')

/** A client that writes `parts`, ends, and records; the server echoes. */
async function echo(net: Net, log: Log, allowHalfOpen: boolean): Promise<void> {
  const { server, port } = await listen(net, { allowHalfOpen }, (s) => {
    record(s, 'server', log)
    s.on('data', (d) => s.write(d))
    if (allowHalfOpen) s.on('end', () => s.end('bye'))
  })
  const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen })
  record(c, 'client', log)
  c.write('hello ')
  c.write('world')
  c.end()
  await socketClosed(c)
  await closed(server)
}

netTest('echo: connect, data both ways, end, finish and close in order', async (t) => {
  await differential(t, (net, log) => echo(net, log, false))
})

netTest('half-open: with allowHalfOpen the server writes after the peer ended', async (t) => {
  const sides = await differential(t, (net, log) => echo(net, log, true))
  t.deepEqual(sides.client.find((e) => e[0] === 'data'), ['data', 'hello worldbye'])
})

netTest('half-open: writes made after the peer ended, then end(), all arrive before the close', async (t) => {
  // Regression: 'finish' came once the shutdown was asked, before queued
  // writes went; the socket, its peer already ended, then closed and
  // dropped them (the last write of a burst was lost).
  const sides = await differential(t, async (net, log) => {
    let peer: nodeNet.Socket | undefined
    const { server, port } = await listen(net, { allowHalfOpen: true }, (s) => {
      peer = s
      record(s, 'server', log)
    })
    const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true })
    await once(c, 'connect')
    while (peer === undefined) await turn(1)
    peer.end()
    await once(c, 'end')
    c.write(Buffer.alloc(92_122, 0x61))
    c.write('b'.repeat(29))
    await turn(8)
    c.write('c'.repeat(56))
    c.write('d'.repeat(60))
    c.end()
    await socketClosed(c)
    await closed(server)
  })
  const data = sides.server.find((e) => e[0] === 'data')?.[1] as string
  t.is(data.length, 92_122 + 29 + 56 + 60)
  t.true(data.endsWith('d'.repeat(60)))
})

netTest('a Unix socket path works as a port does', async (t) => {
  await differential(t, async (net, log) => {
    const p = socketPath('unix')
    const server = net.createServer((s) => {
      record(s, 'server', log)
      s.end('over unix')
    })
    await new Promise<void>((r) => server.listen(p, r))
    log.push(['server', 'address is the path', server.address() === p])
    const c = net.connect(p)
    record(c, 'client', log)
    log.push(['client', 'remoteAddress', c.remoteAddress])
    await socketClosed(c)
    await closed(server)
  })
})

netTest('ECONNREFUSED: the error names the address and port, then close(true)', async (t) => {
  // Port 1 (tcpmux) has no listener here; a port freed by a server could be
  // taken meanwhile by another test's listener or client.
  const port = 1
  await differential(t, async (net, log) => {
    const c = net.connect(port, '127.0.0.1')
    log.push(['client', 'readyState', c.readyState, c.connecting, c.pending])
    c.on('error', (e: NodeJS.ErrnoException & { address?: string; port?: number }) => {
      log.push(['client', 'error', e.message, e.code, e.errno, e.syscall, e.address, e.port])
    })
    const hadError = await socketClosed(c)
    log.push(['client', 'close', hadError, c.readyState, c.destroyed])
  })
})

netTest('EADDRINUSE: listen fails on a port in use; closing the failed server reports ERR_SERVER_NOT_RUNNING', async (t) => {
  await differential(t, async (net, log) => {
    const { server, port } = await listen(net, {}, () => {})
    const second = net.createServer()
    const err = await new Promise<NodeJS.ErrnoException & { address?: string; port?: number }>((r) => {
      second.once('error', r)
      second.listen(port, '127.0.0.1')
    })
    log.push(['second', 'error', err.message.replace(String(port), 'PORT'), err.code, err.errno, err.syscall, err.address, err.port === port])
    log.push(['second', 'listening', second.listening])
    const closeErr = await new Promise<NodeJS.ErrnoException | undefined>((r) => second.close(r))
    log.push(['second', 'close', closeErr?.code, closeErr?.message])
    await closed(server)
  })
})

netTest('writes made before the connection is up are sent once it is', async (t) => {
  await differential(t, async (net, log) => {
    const { server, port } = await listen(net, {}, (s) => {
      record(s, 'server', log)
    })
    const c = net.connect(port, '127.0.0.1')
    log.push(['client', 'write returns', c.write('early ')])
    c.end('bird')
    record(c, 'client', log)
    await socketClosed(c)
    await closed(server)
  })
})

netTest('setTimeout: an idle socket emits timeout and stays open', async (t) => {
  await differential(t, async (net, log) => {
    const { server, port } = await listen(net, {}, (s) => {
      s.on('data', () => s.end('late'))
    })
    const c = net.connect(port, '127.0.0.1')
    record(c, 'client', log)
    await once(c, 'connect')
    c.setTimeout(30)
    await once(c, 'timeout')
    log.push(['client', 'after timeout', c.destroyed, c.timeout])
    c.setTimeout(0)
    c.write('ping')
    await socketClosed(c)
    await closed(server)
  })
})

netTest('pause and resume: a paused reader loses nothing', async (t) => {
  await differential(t, async (net, log) => {
    const big = Buffer.alloc(4 << 20, 0x61)
    const { server, port } = await listen(net, {}, (s) => s.end(big))
    const c = net.connect(port, '127.0.0.1')
    let n = 0
    c.on('data', (d: Buffer) => {
      n += d.length
    })
    c.pause()
    await once(c, 'connect')
    await turn(50)
    log.push(['client', 'while paused', n])
    c.resume()
    await once(c, 'end')
    log.push(['client', 'bytes', n, c.bytesRead])
    await socketClosed(c)
    await closed(server)
  })
})

netTest('destroy mid-write: the writer closes without an error', async (t) => {
  await differential(t, async (net, log) => {
    const { server, port } = await listen(net, {}, (s) => {
      s.on('error', () => {})
      s.resume()
    })
    const c = net.connect(port, '127.0.0.1')
    record(c, 'client', log)
    await once(c, 'connect')
    for (let i = 0; i < 64; i++) c.write(Buffer.alloc(64 * 1024))
    c.destroy()
    log.push(['client', 'destroyed', c.destroyed, c.readyState])
    await socketClosed(c)
    await closed(server)
  })
})

netTest('server.close waits for live connections; getConnections counts them', async (t) => {
  await differential(t, async (net, log) => {
    let peer: nodeNet.Socket | undefined
    const { server, port } = await listen(net, {}, (s) => {
      peer = s
    })
    const c = net.connect(port, '127.0.0.1')
    await once(c, 'connect')
    while (peer === undefined) await turn(1)
    const count = await new Promise<number>((r) => server.getConnections((_e, n) => r(n)))
    log.push(['server', 'connections', count])
    let serverClosed = false
    server.close(() => {
      serverClosed = true
    })
    log.push(['server', 'listening after close', server.listening])
    await turn(30)
    log.push(['server', 'closed while a connection lives', serverClosed])
    c.end()
    await socketClosed(c)
    while (!serverClosed) await turn(1)
    log.push(['server', 'closed after', serverClosed])
  })
})

netTest('an AbortSignal destroys the socket with an AbortError', async (t) => {
  await differential(t, async (net, log) => {
    const { server, port } = await listen(net, {}, (s) => s.resume())
    const ac = new AbortController()
    const c = net.connect({ port, host: '127.0.0.1', signal: ac.signal })
    record(c, 'client', log)
    c.on('error', (e) => log.push(['client', 'error name', e.name]))
    await once(c, 'connect')
    ac.abort()
    await socketClosed(c)
    await closed(server)
  })
})

netTest('readyState, pending, bytes counts and addresses follow node:net', async (t) => {
  await differential(t, async (net, log) => {
    const { server, port } = await listen(net, {}, (s) => {
      s.on('data', (d) => s.write(d))
      s.on('end', () => s.end())
    })
    const c = net.connect(port, '127.0.0.1')
    log.push(['client', 'before', c.readyState, c.pending, c.bytesWritten])
    await once(c, 'connect')
    log.push(['client', 'connected', c.readyState, c.pending, c.remoteAddress, c.remotePort === port, c.remoteFamily, c.localAddress, typeof c.localPort])
    c.write('12345')
    log.push(['client', 'bytesWritten', c.bytesWritten])
    await once(c, 'data')
    c.end()
    log.push(['client', 'after end', c.readyState])
    await socketClosed(c)
    log.push(['client', 'closed', c.readyState, c.bytesRead, c.bytesWritten])
    await closed(server)
  })
})

netTest('write after end fails with ERR_STREAM_WRITE_AFTER_END', async (t) => {
  await differential(t, async (net, log) => {
    const { server, port } = await listen(net, {}, (s) => s.resume())
    const c = net.connect(port, '127.0.0.1')
    await once(c, 'connect')
    c.end()
    c.on('error', (e: NodeJS.ErrnoException) => log.push(['client', 'error', e.code]))
    c.write('late', (e) => log.push(['client', 'write callback', (e as NodeJS.ErrnoException | null)?.code]))
    await socketClosed(c)
    await closed(server)
  })
})

netTest('setEncoding gives strings; for await reads the socket', async (t) => {
  await differential(t, async (net, log) => {
    const { server, port } = await listen(net, {}, (s) => s.end('héllo wörld'))
    const c = net.connect(port, '127.0.0.1')
    c.setEncoding('utf8')
    let text = ''
    for await (const chunk of c) {
      log.push(['client', 'chunk type', typeof chunk])
      text += chunk
      break
    }
    log.push(['client', 'text starts', text.slice(0, 1)])
    await closed(server)
  })
})

netTest('maxConnections: connections beyond it are dropped', async (t) => {
  await differential(t, async (net, log) => {
    const { server, port } = await listen(net, {}, (s) => s.resume())
    server.maxConnections = 1
    server.on('drop', (d) => log.push(['server', 'drop', typeof d?.remotePort]))
    const a = net.connect(port, '127.0.0.1')
    await once(a, 'connect')
    await turn(20)
    const b = net.connect(port, '127.0.0.1')
    b.on('error', () => {})
    b.resume()
    await socketClosed(b)
    log.push(['b', 'closed'])
    a.end()
    await socketClosed(a)
    await closed(server)
  })
})

netTest('bad arguments throw as node:net throws them', async (t) => {
  await differential(t, async (net, log) => {
    for (const args of [[-1], [65536], ['abc:'], [{}], [{ port: 'x' }]] as unknown[][]) {
      try {
        const s = (net.connect as (...a: unknown[]) => nodeNet.Socket)(...args)
        s.on('error', () => {})
        s.destroy()
        log.push(['connect', JSON.stringify(args), 'no throw'])
      } catch (e) {
        log.push(['connect', JSON.stringify(args), (e as NodeJS.ErrnoException).code, (e as Error).name])
      }
    }
    const s = net.createServer()
    try {
      s.listen(70000)
    } catch (e) {
      log.push(['listen', (e as NodeJS.ErrnoException).code])
    }
  })
})

netTest('pauseOnConnect: an accepted socket reads nothing until resumed', async (t) => {
  await differential(t, async (net, log) => {
    let resolve!: () => void
    const done = new Promise<void>((r) => (resolve = r))
    const server = net.createServer({ pauseOnConnect: true }, (s) => {
      log.push(['server', 'paused', s.isPaused(), s.readableFlowing])
      let text = ''
      s.on('data', (d) => (text += String(d)))
      setTimeout(() => {
        log.push(['server', 'before resume', text])
        s.resume()
        s.on('end', () => {
          log.push(['server', 'after resume', text])
          s.end()
          resolve()
        })
      }, 30)
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const c = net.connect((server.address() as nodeNet.AddressInfo).port, '127.0.0.1')
    c.end('held in the kernel')
    c.resume()
    await done
    await socketClosed(c)
    await closed(server)
  })
})

netTest("backpressure: write() returns false past the high-water mark and 'drain' follows", async (t) => {
  await differential(t, async (net, log) => {
    const { server, port } = await listen(net, {}, (s) => {
      // Reads nothing for a while: the writer's data backs up.
      s.pause()
      setTimeout(() => s.resume(), 50)
    })
    const c = net.connect({ port, host: '127.0.0.1' })
    await once(c, 'connect')
    const block = Buffer.alloc(1 << 20)
    let writes = 0
    while (c.write(block)) writes++
    log.push(['client', 'write returned false', writes < 64, c.writableLength > 0, c.writableNeedDrain])
    await once(c, 'drain')
    log.push(['client', 'drained', c.writableNeedDrain])
    c.end()
    c.resume()
    await socketClosed(c)
    await closed(server)
  })
})

netTest('a peer that resets: the other side gets ECONNRESET and close(true)', async (t) => {
  await differential(t, async (net, log) => {
    const { server, port } = await listen(net, {}, (s) => {
      s.once('data', () => s.resetAndDestroy())
    })
    const c = net.connect(port, '127.0.0.1')
    c.on('error', (e: NodeJS.ErrnoException) => log.push(['client', 'error', e.code, e.syscall]))
    c.write('x')
    log.push(['client', 'close', await socketClosed(c)])
    await closed(server)
  })
})

netTest('listen() forms: (port, host, cb), (options, cb), (cb) alone, and a Unix path with a backlog', async (t) => {
  await differential(t, async (net, log) => {
    const forms: ((s: nodeNet.Server, cb: () => void) => void)[] = [
      (s, cb) => s.listen(0, '127.0.0.1', cb),
      (s, cb) => s.listen({ port: 0, host: '127.0.0.1' }, cb),
      (s, cb) => s.listen(cb),
      (s, cb) => s.listen(socketPath('forms'), 16, cb),
    ]
    for (const [i, form] of forms.entries()) {
      const s = net.createServer((c) => c.end('hi'))
      await new Promise<void>((r) => form(s, r))
      const a = s.address()
      log.push([`form ${i}`, 'listening', s.listening, typeof a === 'string' ? 'path' : `${a?.family} ${a?.address}`])
      const c = typeof a === 'string' ? net.connect(a) : net.connect(a!.port, '127.0.0.1')
      c.setEncoding('utf8')
      let text = ''
      c.on('data', (d: string) => (text += d))
      await socketClosed(c)
      log.push([`form ${i}`, 'got', text])
      await closed(s)
      const after = s.address()
      log.push([`form ${i}`, 'closed', s.listening, typeof after === 'string' ? 'its path' : after])
    }
  })
})

netTest('close() right after listen(): no listening, no error, the callback without an error', async (t) => {
  await differential(t, async (net, log) => {
    for (const host of ['127.0.0.1', 'localhost']) {
      const s = net.createServer()
      s.on('listening', () => log.push([host, 'listening']))
      s.on('error', (e: NodeJS.ErrnoException) => log.push([host, 'error', e.code]))
      s.listen(0, host)
      const err = await new Promise<Error | undefined>((r) => s.close(r))
      log.push([host, 'closed', err === undefined || err === null ? 'no error' : (err as NodeJS.ErrnoException).code, s.listening])
      await turn(20)
    }
  })
})
