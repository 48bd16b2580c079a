// What the packed package holds: the entry points, the compiled layer, the
// generated loader and the command, and neither the addon (it ships in the
// platform packages) nor the TypeScript sources. Installing it from a
// registry and using it is registry.spec.ts.

import test from 'ava'
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { root } from './support.js'

interface PackResult {
  files: Array<{ path: string }>
}

/** `npm pack --dry-run` of `dir`: the files its tarball would hold. */
function packed(dir: string): string[] {
  // --ignore-scripts: prepack would rebuild lib/ under the other test files.
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: dir, encoding: 'utf8', timeout: 120_000 })
  if (r.status !== 0) throw new Error(`npm pack --dry-run in ${dir} failed (${r.status ?? r.signal}):\n${r.stderr}`)
  const [result] = JSON.parse(r.stdout) as PackResult[]
  return result.files.map((f) => f.path).sort()
}

test('the root package ships the entry points, lib/, the loader and the command, and no addon or sources', (t) => {
  const files = packed(root)
  for (const f of ['index.js', 'index.mjs', 'index.d.ts', 'index.d.mts', 'net.js', 'net.mjs', 'net.d.ts', 'net.d.mts', 'lib/ring.js', 'lib/ring.d.ts', 'binding.js', 'binding.d.ts', 'dist/bin/zcio.js', 'package.json', 'README.md', 'LICENSE-MIT', 'LICENSE-APACHE']) {
    t.true(files.includes(f), `${f} is in the tarball`)
  }
  t.deepEqual(files.filter((f) => f.endsWith('.node')), [], 'the addon ships in the platform packages, not in zcio')
  t.deepEqual(files.filter((f) => f.startsWith('src/') || f.startsWith('__test__/') || f.startsWith('npm/') || f.startsWith('crates/')), [])
})

test('each platform package ships its addon and the licenses', (t) => {
  const dirs = fs.readdirSync(path.join(root, 'npm')).sort()
  t.deepEqual(dirs, ['linux-arm64-gnu', 'linux-arm64-musl', 'linux-x64-gnu', 'linux-x64-musl'])
  for (const d of dirs) {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'npm', d, 'package.json'), 'utf8')) as { name: string; main: string; files: string[] }
    t.is(pkg.name, `zcio-${d}`)
    t.is(pkg.main, `zcio.${d}.node`)
    t.deepEqual(pkg.files, [`zcio.${d}.node`, 'LICENSE-MIT', 'LICENSE-APACHE'])
  }
})
