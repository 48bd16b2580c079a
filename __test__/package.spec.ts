// Installs the package the way a user does and uses it: `npm pack` of the
// package and of this machine's platform package, installed into a new
// project with no dev dependencies; then require and import, the README's
// quick starts exactly as printed, a strict TypeScript compile against the
// shipped types, and `npx zcio bench --quick`.

import test from 'ava'
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { runReadmeExamples } from './readme-examples.js'
import { probed, root } from './support.js'

const nativeFile = fs.readdirSync(root).find((f) => /^zcio\.linux-.*\.node$/.test(f))
const packTest = nativeFile ? test.serial : test.skip
if (!nativeFile) console.warn('zcio: no built addon at the package root: skipping the package install test')

function run(cmd: string, args: string[], cwd: string): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 240_000, env: { ...process.env, npm_config_loglevel: 'error' } })
}

function ok(t: { fail(m: string): void }, r: SpawnSyncReturns<string>, what: string): string {
  if (r.status !== 0) t.fail(`${what} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}

packTest('the packed package installs and works as a user uses it', (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'zcio-pack-'))
  try {
    // The package and the platform package that matches this machine.
    const tgz = ok(t, run('npm', ['pack', '--silent', '--pack-destination', tmp], root), 'npm pack').trim().split('\n').pop()!
    const triple = nativeFile!.replace(/^zcio\.|\.node$/g, '')
    const platDir = path.join(tmp, 'platform')
    fs.cpSync(path.join(root, 'npm', triple), platDir, { recursive: true })
    fs.copyFileSync(path.join(root, nativeFile!), path.join(platDir, nativeFile!))
    const platTgz = ok(t, run('npm', ['pack', '--silent', '--pack-destination', tmp], platDir), 'npm pack (platform)').trim().split('\n').pop()!
    const listing = execFileSync('tar', ['-tzf', path.join(tmp, tgz)], { encoding: 'utf8' })
    for (const f of ['package/index.js', 'package/index.mjs', 'package/index.d.ts', 'package/index.d.mts', 'package/lib/ring.js', 'package/binding.js', 'package/dist/bin/zcio.js']) {
      t.true(listing.includes(f), `${f} is in the tarball`)
    }
    t.false(/\.node$/m.test(listing), 'the addon ships in the platform package, not in zcio')
    t.false(listing.includes('package/src/'), 'TypeScript sources are not shipped')

    // A new project: nothing but the two tarballs.
    const app = path.join(tmp, 'app')
    fs.mkdirSync(app)
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
    ok(t, run('npm', ['install', '--no-audit', '--no-fund', '--omit=dev', path.join(tmp, tgz), path.join(tmp, platTgz)], app), 'npm install')
    t.deepEqual(fs.readdirSync(path.join(app, 'node_modules')).filter((d) => !d.startsWith('.')).sort(), ['zcio', `zcio-${triple}`].sort())

    const required = ok(t, run(process.execPath, ['-e', "const z = require('zcio'); console.log(Object.keys(z).sort().join())"], app), 'require')
    t.is(required.trim(), 'BufferGroup,RegisteredBufferPool,Ring,TcpListener,TcpStream,ZeroCopyBufferManager,probe,rdma,sendZcBatch')
    const imported = ok(t, run(process.execPath, ['--input-type=module', '-e', "import { Ring, probe } from 'zcio'; console.log(typeof Ring, typeof probe().ioUring)"], app), 'import')
    t.is(imported.trim(), 'function boolean')

    // A missing platform package is named in the error.
    fs.renameSync(path.join(app, 'node_modules', `zcio-${triple}`), path.join(tmp, 'moved'))
    const missing = run(process.execPath, ['-e', "try { require('zcio') } catch (e) { console.log(e.code, e.message) }"], app)
    t.regex(missing.stdout, new RegExp(`ERR_ZCIO_BINDING_NOT_FOUND .*zcio-${triple}`))
    fs.renameSync(path.join(tmp, 'moved'), path.join(app, 'node_modules', `zcio-${triple}`))

    // The README's examples, exactly as printed, against the installed package.
    runReadmeExamples(t, app)
    if (!probed.ioUring || !probed.fixedBuffers) return

    const bench = ok(t, run('npx', ['--no-install', 'zcio', 'bench', '--quick'], app), 'npx zcio bench --quick')
    t.regex(bench, /readFixed/)
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
})
