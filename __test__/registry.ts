// A local npm registry for the install tests: verdaccio on loopback, its
// storage in a temp folder and no uplink, so that it serves only what a test
// publishes to it (any other name is a 404, as an unpublished package is on
// the public registry). Verdaccio is installed from the npm registry into
// .cache/verdaccio/ on first use, from the lock file in __test__/verdaccio/:
// not a dev dependency, since only this test needs its 300-odd packages.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { root } from './load.js'

const SOURCE = path.join(root, '__test__', 'verdaccio')
const CACHE = path.join(root, '.cache', 'verdaccio')
/** Any token: the config lets anyone publish, npm only wants one to send. */
const TOKEN = 'zcio-test'

/** Verdaccio's package folder, installed from __test__/verdaccio's lock file unless it already is. */
export function installVerdaccio(): string {
  const lock = fs.readFileSync(path.join(SOURCE, 'package-lock.json'), 'utf8')
  const pkg = path.join(CACHE, 'node_modules', 'verdaccio')
  const stamp = path.join(CACHE, 'installed-from-lock.json')
  if (fs.existsSync(path.join(pkg, 'package.json')) && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === lock) return pkg
  fs.rmSync(CACHE, { recursive: true, force: true })
  fs.mkdirSync(CACHE, { recursive: true })
  for (const f of ['package.json', 'package-lock.json']) fs.copyFileSync(path.join(SOURCE, f), path.join(CACHE, f))
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--no-update-notifier', '--ignore-scripts'], {
    cwd: CACHE,
    encoding: 'utf8',
    timeout: 300_000,
  })
  if (r.status !== 0) {
    throw new Error(`could not install verdaccio into ${CACHE} (npm ci: ${r.status ?? r.signal}); check that the npm registry is reachable:\n${r.stdout}\n${r.stderr}`)
  }
  fs.writeFileSync(stamp, lock)
  return pkg
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()))
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGTERM')
  const killer = setTimeout(() => child.kill('SIGKILL'), 5000)
  await exited(child)
  clearTimeout(killer)
}

/**
 * Verdaccio started from its API, listening on a port the kernel picks (no
 * port chosen beforehand that another process could take in between, and
 * no health check that could reach someone else's server): prints the port.
 */
const LAUNCHER = `
const [main, config] = process.argv.slice(1)
require(main).runServer(config).then((server) => {
  server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: server.address().port }) + '\\n'))
}, (e) => {
  console.error(e)
  process.exit(1)
})
`

/** The port the launcher prints, or null if it exits or 60 s pass first. */
function listening(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    let buf = ''
    const timer = setTimeout(() => done(null), 60_000)
    const onData = (d: Buffer): void => {
      buf += d.toString()
      const m = /\{"port":(\d+)\}/.exec(buf)
      if (m) done(Number(m[1]))
    }
    const onExit = (): void => done(null)
    function done(port: number | null): void {
      clearTimeout(timer)
      child.stdout!.removeListener('data', onData)
      child.removeListener('exit', onExit)
      resolve(port)
    }
    child.stdout!.on('data', onData)
    child.once('exit', onExit)
  })
}

export interface Registry {
  /** With a trailing slash, as npm prints registries. */
  url: string
  /**
   * The environment for npm commands against this registry, as a fresh
   * user's: none of the npm_* variables of an `npm run` around the tests, a
   * user config naming this registry (and a token for it), and an empty
   * cache of its own under `dir`.
   */
  npmEnv(dir: string): NodeJS.ProcessEnv
  /** What verdaccio printed. */
  output(): string
  stop(): Promise<void>
}

/** Starts verdaccio on a loopback port with its storage and config in `dir`. */
export async function startRegistry(dir: string): Promise<Registry> {
  const verdaccio = installVerdaccio()
  fs.mkdirSync(dir, { recursive: true })
  const config = path.join(dir, 'config.yaml')
  fs.writeFileSync(
    config,
    [
      `storage: ${JSON.stringify(path.join(dir, 'storage'))}`,
      'auth:',
      '  htpasswd:',
      `    file: ${JSON.stringify(path.join(dir, 'htpasswd'))}`,
      'uplinks: {}',
      'packages:',
      "  '**':",
      '    access: $all',
      '    publish: $all',
      '    unpublish: $all',
      'web:',
      '  enable: false',
      'max_body_size: 100mb',
      'log: { type: stdout, format: pretty, level: warn }',
      '',
    ].join('\n'),
  )
  const child = spawn(process.execPath, ['-e', LAUNCHER, verdaccio, config], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  const keep = (d: Buffer): void => {
    out = (out + d.toString()).slice(-20_000)
  }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  // A worker that dies without its after hooks must not leave the server running.
  const onExit = (): void => {
    child.kill('SIGKILL')
  }
  process.once('exit', onExit)
  const port = await listening(child)
  const url = `http://127.0.0.1:${port}/`
  const ping = port === null ? null : await fetch(`${url}-/ping`, { signal: AbortSignal.timeout(10_000) }).catch((e: Error) => e)
  if (!(ping instanceof Response) || !ping.ok) {
    await stopChild(child)
    process.removeListener('exit', onExit)
    throw new Error(`verdaccio did not start${port === null ? '' : ` on ${url} (ping: ${ping instanceof Response ? ping.status : String(ping)})`}:\n${out}`)
  }
  return {
    url,
    npmEnv(envDir: string): NodeJS.ProcessEnv {
      fs.mkdirSync(envDir, { recursive: true })
      const userconfig = path.join(envDir, 'npmrc')
      fs.writeFileSync(userconfig, `registry=${url}\n//127.0.0.1:${port}/:_authToken=${TOKEN}\n`)
      const env: NodeJS.ProcessEnv = {}
      for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v
      return {
        ...env,
        npm_config_userconfig: userconfig,
        npm_config_registry: url,
        npm_config_cache: path.join(envDir, 'npm-cache'),
        npm_config_update_notifier: 'false',
        npm_config_audit: 'false',
        npm_config_fund: 'false',
        npm_config_loglevel: 'warn',
      }
    },
    output: () => out,
    async stop(): Promise<void> {
      process.removeListener('exit', onExit)
      await stopChild(child)
    },
  }
}
