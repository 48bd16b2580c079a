// The README's examples, run exactly as printed from a project where
// `require('zcio')` resolves (a link to this tree, or a real install): the
// JavaScript, TypeScript (with the printed tsconfig.json), network and RDMA
// examples, and the declarations under `tsc --strict` at TypeScript's
// defaults. Each example runs with its own TMPDIR, which must be empty after.

import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { can, missing, root } from './support.js'

type T = { fail(m: string): void; regex(s: string, r: RegExp, m?: string): void; deepEqual(a: unknown, b: unknown, m?: string): void; log(...m: unknown[]): void }

/** The fenced block of `lang` that follows `heading` in the README (the `nth` one, from 0). */
export function readmeBlock(heading: string, lang: string, nth = 0): string {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8')
  const at = readme.indexOf(heading)
  if (at < 0) throw new Error(`README has no "${heading}"`)
  const next = readme.indexOf('\n## ', at + heading.length)
  const section = readme.slice(at, next < 0 ? undefined : next)
  const blocks = [...section.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))]
  if (blocks.length <= nth) throw new Error(`no \`\`\`${lang} block #${nth} in "${heading}"`)
  return blocks[nth][1]
}

function run(cmd: string, args: string[], cwd: string, tmp: string): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 120_000, env: { ...process.env, TMPDIR: tmp } })
}

/**
 * Runs `args` in `app` with a fresh TMPDIR; returns stdout, failing `t` on a
 * non-zero exit or, for an example (`clean`), anything left in TMPDIR (tsc
 * on Node 22+ keeps Node's compile cache there: not an example's doing).
 */
function example(t: T, app: string, what: string, cmd: string, args: string[], clean = true): string {
  const tmp = fs.mkdtempSync(path.join(app, '.tmp-'))
  try {
    const r = run(cmd, args, app, tmp)
    if (r.status !== 0) t.fail(`${what} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`)
    if (clean) t.deepEqual(fs.readdirSync(tmp), [], `${what} leaves nothing in its temp folder`)
    return r.stdout
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

/** Makes `typescript` and `@types/node` resolvable from `app`, as `npm install --save-dev` would. */
function devTools(app: string): void {
  const nm = path.join(app, 'node_modules')
  fs.mkdirSync(path.join(nm, '@types'), { recursive: true })
  for (const dep of ['typescript', '@types/node']) {
    const to = path.join(nm, dep)
    if (!fs.existsSync(to)) fs.symlinkSync(path.join(root, 'node_modules', dep), to)
  }
}

/** Runs every README example in `app` (where `zcio` is installed or linked). */
export function runReadmeExamples(t: T, app: string): void {
  devTools(app)
  const tsc = path.join(app, 'node_modules', 'typescript', 'bin', 'tsc')

  // The declarations at TypeScript's defaults (target ES5, CommonJS).
  fs.writeFileSync(
    path.join(app, 'app.ts'),
    [
      "import { Ring, RegisteredBufferPool, TcpListener, TcpStream, BufferGroup, probe, rdma, ZeroCopyBufferManager, net, NetSocket, NetConnectOptions, NetListenOptions } from 'zcio'",
      "import * as zcioNet from 'zcio/net'",
      'declare const ring: Ring',
      'const pool = new RegisteredBufferPool(ring, 4096, 1)',
      'const tcp = TcpListener.bind(ring, { port: 0 })',
      'const port: number = tcp.address.port',
      "const unix = TcpListener.bind(ring, { path: '/tmp/s' })",
      'const where: string = unix.address.path',
      'const s: Promise<TcpStream> = TcpStream.connect(ring, { port })',
      'console.log(pool.bufferSize, where, s, probe().ioUring, typeof BufferGroup, typeof rdma.open, typeof ZeroCopyBufferManager)',
      "const sock: NetSocket = net.connect(80, 'localhost', () => sock.end('x'))",
      "const server = zcioNet.createServer({ noDelay: true }, (c) => c.pipe(c))",
      "server.listen(0, () => console.log(server.address(), sock.remotePort, zcioNet.isIP('::1')))",
      "const dialled: NetConnectOptions = { host: 'example.test', port: 80, autoSelectFamilyAttemptTimeout: 100, localAddress: '127.0.0.1' }",
      "const where2: NetListenOptions = { port: 0, ipv6Only: true, reusePort: true }",
      "net.createServer().listen(where2).close()",
      "net.connect(dialled).on('connectionAttempt', (ip: string) => console.log(ip)).unref()",
      "ring.unref().ref()",
      '',
    ].join('\n'),
  )
  example(t, app, 'tsc --strict app.ts at the defaults', process.execPath, [tsc, '--strict', '--noEmit', 'app.ts'], false)

  if (!can('fixedBuffers')) {
    t.log(`no fixed buffers here (${missing('fixedBuffers')}): the README's I/O examples are not run`)
    return
  }
  fs.writeFileSync(path.join(app, 'quickstart.js'), readmeBlock('## Quick start (JavaScript)', 'js'))
  const js = example(t, app, 'the JavaScript quick start', process.execPath, ['quickstart.js'])
  t.regex(js, /^read 65536 bytes, changed one, wrote them back \(Zciozcio\.\.\.\), then read 4096 more\n$/)

  fs.writeFileSync(path.join(app, 'tsconfig.json'), readmeBlock('## Quick start (TypeScript)', 'json'))
  fs.writeFileSync(path.join(app, 'quick.mts'), readmeBlock('## Quick start (TypeScript)', 'ts'))
  example(t, app, 'npx tsc with the printed tsconfig.json', process.execPath, [tsc], false)
  const ts = example(t, app, 'the TypeScript quick start', process.execPath, ['quick.mjs'])
  t.regex(ts, /^read 16 bytes: hello, io_uring\nrejected with ERR_OUT_OF_RANGE\n$/)

  if (!can('bufRing')) {
    t.log('no provided-buffer rings here: the network example is not run')
  } else {
    fs.writeFileSync(path.join(app, 'network.js'), readmeBlock('## Network (JavaScript)', 'js'))
    const net = example(t, app, 'the network example', process.execPath, ['network.js'])
    t.regex(net, /^echoed: hello over io_uring\nechoed: and a second one\nsent 19 bytes zero-copy \(copied: (true|false)\)\n$/)
  }

  if (!can('bufRing')) {
    t.log('no provided-buffer rings here: the zcio.net example is not run')
  } else {
    fs.writeFileSync(path.join(app, 'zcio-net.js'), readmeBlock('## zcio.net: node:net on zcio (JavaScript)', 'js'))
    const out = example(t, app, 'the zcio.net example', process.execPath, ['zcio-net.js'])
    t.regex(out, /^200 hello \/zcio\nHTTP\/1.1 200 OK \(hadError: false\)\nclosed\n$/)
  }

  fs.writeFileSync(path.join(app, 'rdma.js'), readmeBlock('## RDMA (JavaScript)', 'js'))
  const rdma = example(t, app, 'the RDMA example', process.execPath, ['rdma.js'])
  if (rdma.startsWith('no RDMA here: ')) t.log(`the RDMA example ran without a device: ${rdma.trim()}`)
  else t.regex(rdma, /^hello over RDMA \[ .*\]\n$/)
}
