// A local npm registry for the install tests: verdaccio on loopback, its
// storage in a temp folder and no uplink, so that it serves only what a test
// publishes to it (any other name is a 404, as an unpublished package is on
// the public registry). Verdaccio is installed from the npm registry into
// .cache/verdaccio/ on first use, from the lock file in __test__/verdaccio/:
// not a dev dependency, since only this test needs its 300-odd packages.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as net from 'node:net'
import * as path from 'node:path'
import { root } from './load.js'

const SOURCE = path.join(root, '__test__', 'verdaccio')
const CACHE = path.join(root, '.cache', 'verdaccio')
/** Any token: the config lets anyone publish, npm only wants one to send. */
const TOKEN = 'zcio-test'

/** Verdaccio's entry script, installed from __test__/verdaccio's lock file unless it already is. */
export function installVerdaccio(): string {
  const lock = fs.readFileSync(path.join(SOURCE, 'package-lock.json'), 'utf8')
  const bin = path.join(CACHE, 'node_modules', 'verdaccio', 'bin', 'verdaccio')
  const stamp = path.join(CACHE, 'installed-from-lock.json')
  if (fs.existsSync(bin) && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8') === lock) return bin
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
  return bin
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port
      srv.close(() => resolve(port))
    })
  })
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

/** Resolves true once `url` answers /-/ping, false if the child exits or 30 s pass first. */
async function waitUp(url: string, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + 30_000
  while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
    try {
      const res = await fetch(`${url}-/ping`)
      if (res.ok) return true
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  return false
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

/** Starts verdaccio on a free loopback port with its storage and config in `dir`. */
export async function startRegistry(dir: string): Promise<Registry> {
  const bin = installVerdaccio()
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
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const url = `http://127.0.0.1:${port}/`
    const child = spawn(process.execPath, [bin, '--config', config, '--listen', `127.0.0.1:${port}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
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
    if (await waitUp(url, child)) {
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
    await stopChild(child)
    process.removeListener('exit', onExit)
    // Another process may have taken the port between freePort() and the listen.
    if (attempt === 3 || !/EADDRINUSE/.test(out)) throw new Error(`verdaccio did not start on ${url}:\n${out}`)
  }
}
