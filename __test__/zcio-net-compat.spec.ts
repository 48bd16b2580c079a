// Node's modules and real clients over zcio.net, unchanged: an http server
// fed by a zcio.net server (keep-alive, a big body, pipelined requests),
// Node's http client and undici's fetch on zcio.net sockets, TLS both ways
// over zcio.net sockets, curl over https, stream.pipeline and events.once.

import test from 'ava'
import { execFile, execFileSync } from 'node:child_process'
import { once } from 'node:events'
import * as fs from 'node:fs'
import * as http from 'node:http'
import * as https from 'node:https'
import type * as nodeNet from 'node:net'
import * as os from 'node:os'
import * as path from 'node:path'
import { Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import * as tls from 'node:tls'
import { Agent, fetch as undiciFetch } from 'undici'
import { needs } from './support.js'
import { closed, listen, zcioNet } from './zcio-net-support.js'

const netTest = needs('bufRing')

/** An http server whose connections come from a zcio.net server. */
async function httpOverZcio(handler: http.RequestListener): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer({ keepAliveTimeout: 500 }, handler)
  const { server: front, port } = await listen(zcioNet, {}, (s) => server.emit('connection', s))
  return {
    port,
    close: async () => {
      server.closeAllConnections()
      await closed(front)
    },
  }
}

netTest('http.createServer fed by zcio.net serves fetch, keep-alive and a 4 MiB body', async (t) => {
  const big = Buffer.alloc(4 << 20, 0x62)
  const h = await httpOverZcio((req, res) => {
    if (req.url === '/big') res.end(big)
    else res.end(`hi ${req.method} ${req.url}`)
  })
  for (let i = 0; i < 5; i++) {
    const r = await fetch(`http://127.0.0.1:${h.port}/x${i}`)
    t.is(await r.text(), `hi GET /x${i}`)
  }
  const r = await fetch(`http://127.0.0.1:${h.port}/big`)
  t.true(Buffer.from(await r.arrayBuffer()).equals(big))
  const post = await fetch(`http://127.0.0.1:${h.port}/p`, { method: 'POST', body: 'x'.repeat(100_000) })
  t.is(await post.text(), 'hi POST /p')
  await h.close()
})

netTest('Node http client on zcio.net sockets (createConnection) talks to a Node server', async (t) => {
  const server = http.createServer((req, res) => {
    let n = 0
    req.on('data', (d: Buffer) => (n += d.length))
    req.on('end', () => res.end(`got ${n}`))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as nodeNet.AddressInfo).port
  const agent = new http.Agent({ keepAlive: true })
  ;(agent as unknown as { createConnection: unknown }).createConnection = (o: nodeNet.NetConnectOpts, cb: () => void) => zcioNet.createConnection(o, cb)
  for (let i = 0; i < 3; i++) {
    const body = await new Promise<string>((resolve, reject) => {
      const req = http.request({ port, host: '127.0.0.1', method: 'POST', agent }, (res) => {
        let s = ''
        res.setEncoding('utf8')
        res.on('data', (d: string) => (s += d))
        res.on('end', () => resolve(s))
      })
      req.on('error', reject)
      req.end(Buffer.alloc(70_000 * (i + 1)))
    })
    t.is(body, `got ${70_000 * (i + 1)}`)
  }
  agent.destroy()
  server.close()
})

netTest("undici's fetch through an Agent whose connect makes zcio.net sockets", async (t) => {
  const server = http.createServer((req, res) => res.end(`undici ${req.url}`))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as nodeNet.AddressInfo).port
  let made = 0
  const dispatcher = new Agent({
    connect: (opts, cb) => {
      made++
      const s = zcioNet.connect({ host: opts.hostname, port: Number(opts.port) })
      s.once('connect', () => cb(null, s))
      s.once('error', (e) => cb(e, null))
    },
  })
  for (let i = 0; i < 3; i++) {
    const r = await undiciFetch(`http://127.0.0.1:${port}/u${i}`, { dispatcher })
    t.is(await r.text(), `undici /u${i}`)
  }
  // undici opens a second connection here whichever net it is given (seen
  // with node:net too); what matters is that its sockets are zcio's.
  t.true(made >= 1 && made <= 3)
  await dispatcher.close()
  server.close()
})

/** A self-signed certificate for localhost, or undefined without openssl. */
function selfSigned(): { key: Buffer; cert: Buffer } | undefined {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zcio-tls-'))
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${dir}/k.pem`, '-out', `${dir}/c.pem`, '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' })
    return { key: fs.readFileSync(`${dir}/k.pem`), cert: fs.readFileSync(`${dir}/c.pem`) }
  } catch {
    return undefined
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

const pem = selfSigned()
const tlsTest = pem ? netTest : test.skip
if (!pem) console.warn('zcio: skipping the TLS tests: openssl is not installed to make a certificate')

tlsTest('TLS both ways over zcio.net: tls.connect({ socket }) and a TLSSocket made on an accepted socket', async (t) => {
  const { key, cert } = pem!
  const { server, port } = await listen(zcioNet, {}, (raw) => {
    const s = new tls.TLSSocket(raw, { isServer: true, key, cert })
    s.on('data', (d: Buffer) => s.write(`tls:${d}`))
    s.on('end', () => s.end())
  })
  const c = tls.connect({ socket: zcioNet.connect(port, '127.0.0.1'), ca: cert, servername: 'localhost' })
  await once(c, 'secureConnect')
  t.true(c.authorized)
  c.write('secret')
  const [reply] = (await once(c, 'data')) as [Buffer]
  t.is(String(reply), 'tls:secret')
  c.end()
  await once(c, 'close')
  await closed(server)
})

tlsTest('https.createServer fed by zcio.net answers https.get', async (t) => {
  const { key, cert } = pem!
  const hs = https.createServer({ key, cert }, (req, res) => res.end(`secure ${req.url}`))
  const { server, port } = await listen(zcioNet, {}, (s) => hs.emit('connection', s))
  const body = await new Promise<string>((resolve, reject) => {
    https
      .get({ port, host: '127.0.0.1', path: '/s', ca: cert, servername: 'localhost', agent: false }, (res) => {
        let s = ''
        res.on('data', (d: Buffer) => (s += d))
        res.on('end', () => resolve(s))
      })
      .on('error', reject)
  })
  t.is(body, 'secure /s')
  hs.closeAllConnections()
  await closed(server)
})

/** Whether `curl` runs here. */
function hasCurl(): boolean {
  try {
    execFileSync('curl', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

const curlTest = pem && hasCurl() ? netTest : test.skip
if (pem && !hasCurl()) console.warn('zcio: skipping the curl test: curl is not installed')

curlTest('curl talks https to an https server fed by zcio.net: keep-alive, a 4 MiB download, an upload', async (t) => {
  const { key, cert } = pem!
  const big = Buffer.alloc(4 << 20, 0x71)
  const hs = https.createServer({ key, cert }, (req, res) => {
    if (req.url === '/big') return res.end(big)
    let n = 0
    req.on('data', (d: Buffer) => (n += d.length))
    req.on('end', () => res.end(`${req.method} ${req.url} ${n}\n`))
  })
  const { server, port } = await listen(zcioNet, {}, (s) => hs.emit('connection', s))
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zcio-curl-'))
  fs.writeFileSync(`${dir}/ca.pem`, cert)
  fs.writeFileSync(`${dir}/up`, Buffer.alloc(300_000, 0x75))
  const curl = (args: string[]): Promise<string> =>
    new Promise((resolve, reject) =>
      execFile('curl', ['-sS', '--cacert', `${dir}/ca.pem`, '--resolve', `localhost:${port}:127.0.0.1`, ...args], { encoding: 'buffer', maxBuffer: 16 << 20 }, (e, out) =>
        e ? reject(e) : resolve(out.toString('latin1')),
      ),
    )
  const base = `https://localhost:${port}`
  // Three requests on one connection: curl reuses it (num_connects 0 after the first).
  const three = await curl(['-w', 'connects=%{num_connects}\n', `${base}/a`, `${base}/b`, `${base}/c`])
  t.is(three, 'GET /a 0\nconnects=1\nGET /b 0\nconnects=0\nGET /c 0\nconnects=0\n')
  const down = await curl([`${base}/big`])
  t.is(down.length, big.length)
  t.true(Buffer.from(down, 'latin1').equals(big))
  t.is(await curl(['--data-binary', `@${dir}/up`, `${base}/up`]), 'POST /up 300000\n')
  hs.closeAllConnections()
  await closed(server)
  fs.rmSync(dir, { recursive: true, force: true })
})

netTest('stream.pipeline through a zcio.net socket, and events.once on its events', async (t) => {
  const { server, port } = await listen(zcioNet, {}, (s) => {
    const upper = new Transform({ transform: (c: Buffer, _e, cb) => cb(null, Buffer.from(String(c).toUpperCase())) })
    void pipeline(s, upper, s).catch(() => {})
  })
  const c = zcioNet.connect(port, '127.0.0.1')
  await once(c, 'connect')
  c.end('shout this')
  let text = ''
  for await (const chunk of c) text += String(chunk)
  t.is(text, 'SHOUT THIS')
  await closed(server)
})
