// Addresses: host names resolved as net.connect resolves them, the typed
// address of each kind of listener and stream, and bad hosts refused.

import test from 'ava'
import { lookup } from 'node:dns/promises'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { codeOf, needs, rejectionCode, zcio } from './support.js'

const { Ring, TcpStream, TcpListener } = zcio
const ioTest = needs()

ioTest('connect and listen resolve host names as net does', async (t) => {
  const ring = new Ring()
  try {
    const expected = (await lookup('localhost')).address
    const l = await TcpListener.listen(ring, { host: 'localhost', port: 0 })
    // Typed by the options: a TCP listener's port is a number under --strict.
    const port: number = l.address.port
    t.is(l.address.address, expected)
    const accepted = l.accept()
    const c = await TcpStream.connect(ring, { host: 'localhost', port })
    const s = (await accepted)!
    t.is(c.remoteAddress.address, expected)
    t.is(c.remoteAddress.port, port)
    t.is(s.remoteAddress.port, c.localAddress.port)

    // A Node client and a zcio client reach the same address for a name.
    const viaNode = await new Promise<net.Socket>((resolve, reject) => {
      const sock = net.connect({ host: 'localhost', port }, () => resolve(sock)).on('error', reject)
    })
    const s2 = (await l.accept())!
    t.is(s2.remoteAddress.port, viaNode.localPort!)
    viaNode.destroy()
    await Promise.all([c.close(), s.close(), s2.close()])
    l.close()
  } finally {
    ring.close()
  }
})

ioTest('an unknown host name rejects with ENOTFOUND, as dns.lookup does', async (t) => {
  const ring = new Ring()
  try {
    const host = 'no-such-host.invalid'
    const nodeCode = await lookup(host).then(
      () => 'resolved',
      (e: NodeJS.ErrnoException) => e.code,
    )
    if (nodeCode === 'resolved') return t.pass(`${host} resolves here; nothing to check`)
    const e = await t.throwsAsync(TcpStream.connect(ring, { host, port: 80 }))
    t.is((e as NodeJS.ErrnoException).code, nodeCode)
    t.is((e as NodeJS.ErrnoException).syscall, 'getaddrinfo')
    const e2 = await t.throwsAsync(TcpListener.listen(ring, { host, port: 0 }))
    t.is((e2 as NodeJS.ErrnoException).code, nodeCode)
    t.is(ring.inFlightCount, 0)
  } finally {
    ring.close()
  }
})

ioTest('bind() takes numeric hosts only and says what resolves names', (t) => {
  const ring = new Ring()
  try {
    const e = t.throws(() => TcpListener.bind(ring, { host: 'localhost', port: 0 }))
    t.is((e as NodeJS.ErrnoException).code, 'ERR_INVALID_ARG_VALUE')
    t.regex(e!.message, /TcpListener\.listen\(\) resolves names/)
  } finally {
    ring.close()
  }
})

ioTest('bad hosts are refused before any lookup', async (t) => {
  const ring = new Ring()
  try {
    for (const host of ['', 'a b', 'x/y', 'a\0b', 'h'.repeat(254), 'fe80::1%lo']) {
      t.is(await rejectionCode(TcpStream.connect(ring, { host, port: 1 })), 'ERR_INVALID_ARG_VALUE', JSON.stringify(host))
      t.is(await rejectionCode(TcpListener.listen(ring, { host, port: 0 })), 'ERR_INVALID_ARG_VALUE', JSON.stringify(host))
    }
    for (const host of [1, null, {}, Symbol('h')]) {
      t.is(await rejectionCode(TcpStream.connect(ring, { host: host as never, port: 1 })), 'ERR_INVALID_ARG_TYPE')
      t.is(await rejectionCode(TcpListener.listen(ring, { host: host as never })), 'ERR_INVALID_ARG_TYPE')
    }
    t.is(await rejectionCode(TcpListener.listen({} as never, { port: 0 })), 'ERR_INVALID_ARG_TYPE')
    t.is(await rejectionCode(TcpListener.listen(ring, { backlog: -1 })), 'ERR_OUT_OF_RANGE')
    t.is(codeOf(() => TcpListener.bind(ring, { host: 'a b' })), 'ERR_INVALID_ARG_VALUE')
  } finally {
    ring.close()
  }
})

ioTest('a Unix listener and its streams report Unix addresses', async (t) => {
  const ring = new Ring()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zcio-addr-'))
  try {
    const sock = path.join(dir, 'sock')
    const l = await TcpListener.listen(ring, { path: sock })
    const where: string = l.address.path
    t.is(where, sock)
    t.is(l.address.family, 'unix')
    const accepted = l.accept()
    const c = await TcpStream.connect(ring, { path: sock })
    const s = (await accepted)!
    t.is(c.remoteAddress.path, sock)
    t.is(s.localAddress.path, sock)
    await Promise.all([c.close(), s.close()])
    l.close()
  } finally {
    ring.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
