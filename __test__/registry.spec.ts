// Installs zcio from a registry as a user does: the package and the
// platform packages are published to a local registry (registry.ts) the way
// the release publishes them (publish.ts), then new projects run
// `npm install zcio` against it. npm has to pick this machine's platform
// package through zcio's optionalDependencies; the package then loads by
// require and by import, runs the README's examples exactly as printed
// (io_uring file and TCP I/O), compiles against its shipped types under
// tsc --strict and runs its command. Without optional dependencies, loading
// fails with ERR_ZCIO_BINDING_NOT_FOUND, and each fix the message gives is
// followed and must work.

import anyTest, { type TestFn } from 'ava'
import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import * as fs from 'node:fs'
import { createRequire } from 'node:module'
import * as os from 'node:os'
import * as path from 'node:path'
import { runReadmeExamples } from './readme-examples.js'
import { can, missing, root } from './support.js'
import { startRegistry, type Registry } from './registry.js'
import { publishZcio, type Published } from './publish.js'

interface Context {
  tmp: string
  registry: Registry
  env: NodeJS.ProcessEnv
  published: Published
  /** The project that ran a plain `npm install zcio`. */
  app: string
}
const test = anyTest as TestFn<Context>

// This machine's platform package (zcio-linux-x64-gnu, ...), by the rule the
// package loads it with, and its binary as the build leaves it at the root.
const { platformPackage } = createRequire(import.meta.url)(`${root}/lib/binding.js`) as typeof import('../lib/binding.js')
const HOST = platformPackage()
const HOST_BINARY = `zcio.${HOST.replace(/^zcio-/, '')}.node`
const nativeFile = fs.existsSync(path.join(root, HOST_BINARY))
const installTest = nativeFile ? test.serial : test.skip
if (!nativeFile) console.warn(`zcio: no ${HOST_BINARY} at the package root (run npm run build): skipping the registry install tests`)
const ioTest = nativeFile && can('fixedBuffers') ? test.serial : test.skip
if (nativeFile && !can('fixedBuffers')) {
  console.warn(`zcio: no fixed buffers (${missing('fixedBuffers')}): skipping the bench of the installed package (the README examples say what they skip)`)
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 240_000 })
}

function ok(t: { fail(m: string): void }, r: SpawnSyncReturns<string>, what: string): string {
  if (r.status !== 0) t.fail(`${what} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

/** A new, empty project folder. */
function project(ctx: Context, name: string): string {
  const dir = path.join(ctx.tmp, name)
  fs.mkdirSync(dir)
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }))
  return dir
}

function installed(dir: string): string[] {
  const nm = path.join(dir, 'node_modules')
  return fs.existsSync(nm) ? fs.readdirSync(nm).filter((d) => !d.startsWith('.')).sort() : []
}

const LOAD_ERROR = "try { require('zcio'); console.log('loaded') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }"

test.before(async (t) => {
  if (!nativeFile) return
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'zcio-registry-'))
  t.context.tmp = tmp
  t.context.registry = await startRegistry(path.join(tmp, 'registry'))
  t.context.env = t.context.registry.npmEnv(path.join(tmp, 'npm'))
  t.context.published = publishZcio(t.context.registry.url, t.context.env, path.join(tmp, 'stage'))
  const app = project(t.context, 'app')
  const r = run('npm', ['install', 'zcio', '--registry', t.context.registry.url], app, t.context.env)
  if (r.status !== 0) throw new Error(`npm install zcio failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`)
  t.context.app = app
})

test.after.always(async (t) => {
  await t.context.registry?.stop()
  if (t.context.tmp) fs.rmSync(t.context.tmp, { recursive: true, force: true })
})

installTest('npm install zcio takes this machine\'s platform package through optionalDependencies', (t) => {
  const { app, published } = t.context
  t.log(`published through ${published.via}: ${published.published.join(', ')}`)
  const unpublished = published.platforms.filter((p) => !published.published.includes(p))
  if (unpublished.length > 0) t.log(`not published (no binary in the tree): ${unpublished.join(', ')}; the registry answers 404 for them`)
  t.true(published.published.includes(HOST), `${HOST} was published`)
  t.deepEqual(published.optionalDependencies, Object.fromEntries(published.platforms.map((p) => [p, published.version])), 'all four platform packages at the version')
  t.is(published.platforms.length, 4)

  // npm skips the platform packages of other CPUs and C libraries, and
  // those that are not published (an optional dependency that 404s).
  t.deepEqual(installed(app), ['zcio', HOST])
  const plat = JSON.parse(fs.readFileSync(path.join(app, 'node_modules', HOST, 'package.json'), 'utf8')) as { version: string }
  t.is(plat.version, published.version)
  t.true(fs.existsSync(path.join(app, 'node_modules', HOST, HOST_BINARY)), `${HOST} carries ${HOST_BINARY}`)
  const lock = JSON.parse(fs.readFileSync(path.join(app, 'package-lock.json'), 'utf8')) as { packages: Record<string, { optional?: boolean; version?: string }> }
  t.is(lock.packages[`node_modules/${HOST}`]?.optional, true, 'recorded as optional in the lock file')
  for (const p of published.published) t.truthy(lock.packages[`node_modules/${p}`], `${p} is in the lock file (installed here or not)`)

  // A project whose lock file names every platform package installs again
  // with npm ci; one made while some were unpublished does not (npm ci finds
  // them missing from the lock file): the release publishes all four first.
  const again = path.join(t.context.tmp, 'app-ci')
  fs.mkdirSync(again)
  for (const f of ['package.json', 'package-lock.json']) fs.copyFileSync(path.join(app, f), path.join(again, f))
  const ci = run('npm', ['ci'], again, t.context.env)
  if (unpublished.length === 0) {
    ok(t, ci, 'npm ci from the lock file of the install')
    t.deepEqual(installed(again), ['zcio', HOST])
  } else {
    t.log(`npm ci from that lock file, with ${unpublished.length} platform packages unpublished: exit ${ci.status}: ${(ci.stderr.match(/Missing: .*/g) ?? [ci.stderr.trim().split('\n')[0]]).join('; ')}`)
  }
})

installTest('require and import give the same classes', (t) => {
  const script = `
    const c = require('zcio')
    import('zcio').then((m) => {
      const keys = Object.keys(c).sort()
      console.log(JSON.stringify({
        keys,
        esm: Object.keys(m).filter((k) => k !== 'default').sort(),
        same: keys.every((k) => m[k] === c[k]),
        ring: typeof c.Ring === 'function' && c.Ring === m.Ring,
      }))
    })`
  const out = JSON.parse(ok(t, run(process.execPath, ['-e', script], t.context.app, t.context.env), 'require and import')) as {
    keys: string[]
    esm: string[]
    same: boolean
    ring: boolean
  }
  t.deepEqual(out.keys, ['BufferGroup', 'RegisteredBufferPool', 'Ring', 'TcpListener', 'TcpStream', 'ZeroCopyBufferManager', 'net', 'probe', 'rdma', 'sendZcBatch'])
  t.deepEqual(out.esm, out.keys)
  t.true(out.same, 'every export of import() is the one of require()')
  t.true(out.ring)
})

installTest("the zcio/net subpath gives zcio's net to require and import, in node:net's shape", (t) => {
  const script = `
    const c = require('zcio/net')
    import('zcio/net').then((m) => {
      const keys = ['Server', 'Socket', 'connect', 'createConnection', 'createServer', 'isIP', 'isIPv4', 'isIPv6']
      console.log(JSON.stringify({
        cjs: keys.every((k) => typeof c[k] === 'function' && c[k] === require('zcio').net[k]),
        esm: keys.every((k) => m[k] === c[k]) && m.default === require('zcio').net,
      }))
    })`
  const out = JSON.parse(ok(t, run(process.execPath, ['-e', script], t.context.app, t.context.env), 'zcio/net')) as { cjs: boolean; esm: boolean }
  t.deepEqual(out, { cjs: true, esm: true })
})

installTest('the README examples run on the installed package, and its types compile under tsc --strict', (t) => {
  // As printed (readme-examples.ts); those that need io_uring say so where it is missing.
  runReadmeExamples(t, t.context.app)
  t.pass()
})

installTest('npx zcio --version prints the version', (t) => {
  const out = ok(t, run('npx', ['--no-install', 'zcio', '--version'], t.context.app, t.context.env), 'npx zcio --version')
  t.is(out, `${t.context.published.version}\n`)
})

ioTest('npx zcio bench --quick runs', (t) => {
  const bench = ok(t, run('npx', ['--no-install', 'zcio', 'bench', '--quick'], t.context.app, t.context.env), 'npx zcio bench --quick')
  t.regex(bench, /readFixed/)
})

installTest('with --omit=optional, require fails with ERR_ZCIO_BINDING_NOT_FOUND, and each fix it gives works', (t) => {
  const { env, registry } = t.context
  const followed: string[] = []
  for (const which of [0, 1]) {
    const dir = project(t.context, `omit-${which}`)
    ok(t, run('npm', ['install', 'zcio', '--omit=optional', '--registry', registry.url], dir, env), 'npm install zcio --omit=optional')
    t.deepEqual(installed(dir), ['zcio'], 'no platform package')
    const err = JSON.parse(ok(t, run(process.execPath, ['-e', LOAD_ERROR], dir, env), 'require')) as { code: string; message: string }
    t.is(err.code, 'ERR_ZCIO_BINDING_NOT_FOUND')
    t.true(err.message.includes(HOST), `the message names ${HOST}`)
    // The fixes the message gives: `npm install ...` commands, run as printed
    // (the registry is the user's configured one, here the local one).
    const commands = [...err.message.matchAll(/`(npm install[^`]*)`/g)].map((m) => m[1])
    t.is(commands.length, 2, `two commands in: ${err.message}`)
    const fix = commands[which]
    followed.push(fix)
    const [cmd, ...args] = fix.split(' ')
    ok(t, run(cmd, args, dir, env), fix)
    t.deepEqual(installed(dir), ['zcio', HOST], `after ${fix}`)
    const loaded = ok(t, run(process.execPath, ['-e', "const z = require('zcio'); console.log(typeof z.Ring, typeof z.probe().ioUring)"], dir, env), `require after ${fix}`)
    t.is(loaded.trim(), 'function boolean')
    if (which === 1) {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { optionalDependencies?: Record<string, string> }
      t.truthy(pkg.optionalDependencies?.[HOST], `${HOST} saved as an optional dependency, so the project still installs on other platforms`)
    }
  }
  t.log(`followed: ${followed.join(' | ')}`)
  t.deepEqual(followed, ['npm install --include=optional', `npm install --save-optional ${HOST}@${t.context.published.version}`])
})
