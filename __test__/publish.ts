// Publishes zcio to a registry the way the release does (release.yml's
// publish job): the platform packages npm/<platform>/ first, each with its
// binary, then the root package with all four in its optionalDependencies at
// its version. The root package is the `npm pack` of this checkout, which
// `npm run build` has built (its prepack script is not run again, so that
// no other test sees lib/ rewritten under it).
//
// With the four binaries in the tree (zcio.<platform>.node at the root, as
// the release's build jobs leave them), this is the release's own step:
// `napi prepublish -t npm`, then `npm publish` of the root. With fewer, napi
// prepublish refuses (each platform package must carry its binary), so the
// platform packages that have a binary are published with `npm publish`,
// the others are not published at all, and the root's optionalDependencies
// are written as napi prepublish writes them: every platform at the version.

import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { root } from './load.js'

export interface Published {
  version: string
  /** Every platform package, published or not: zcio-linux-x64-gnu, ... */
  platforms: string[]
  /** The ones published, each with its binary. */
  published: string[]
  /** How: 'napi prepublish' or 'npm publish of the platform packages with a binary'. */
  via: string
  /** The optionalDependencies of the root package as published. */
  optionalDependencies: Record<string, string>
}

export function sh(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): string {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 240_000 })
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`)
  }
  return r.stdout
}

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>
}

/** The root package as packed: the tarball's contents under `dir`/package. */
function stageRoot(dir: string, env: NodeJS.ProcessEnv): string {
  fs.mkdirSync(dir, { recursive: true })
  const out = sh('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], root, env)
  const [{ filename }] = JSON.parse(out) as Array<{ filename: string }>
  sh('tar', ['-xzf', path.join(dir, filename), '-C', dir], dir, env)
  return path.join(dir, 'package')
}

export function publishZcio(registryUrl: string, env: NodeJS.ProcessEnv, dir: string): Published {
  const rootPkg = readJson(path.join(root, 'package.json'))
  const version = rootPkg.version as string
  const binaryName = (rootPkg.napi as { binaryName: string }).binaryName
  const dirs = fs.readdirSync(path.join(root, 'npm')).filter((d) => fs.existsSync(path.join(root, 'npm', d, 'package.json'))).sort()
  const platforms = dirs.map((d) => readJson(path.join(root, 'npm', d, 'package.json')).name as string)
  const binary = (d: string): string => path.join(root, `${binaryName}.${d}.node`)
  const built = dirs.filter((d) => fs.existsSync(binary(d)))

  const pkgDir = stageRoot(dir, env)
  let via: string
  if (built.length === dirs.length) {
    // The release's step, on a copy: npm/ beside the packed root, with the binaries.
    fs.cpSync(path.join(root, 'npm'), path.join(pkgDir, 'npm'), { recursive: true })
    for (const d of dirs) fs.copyFileSync(binary(d), path.join(pkgDir, 'npm', d, path.basename(binary(d))))
    const napi = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')
    sh(process.execPath, [napi, 'prepublish', '-t', 'npm', '--no-gh-release'], pkgDir, env)
    fs.rmSync(path.join(pkgDir, 'npm'), { recursive: true })
    via = 'napi prepublish'
  } else {
    for (const d of built) {
      const platDir = path.join(dir, `platform-${d}`)
      fs.cpSync(path.join(root, 'npm', d), platDir, { recursive: true })
      fs.copyFileSync(binary(d), path.join(platDir, path.basename(binary(d))))
      sh('npm', ['publish'], platDir, env)
    }
    const manifest = readJson(path.join(pkgDir, 'package.json'))
    manifest.optionalDependencies = Object.fromEntries(platforms.map((name) => [name, version]))
    fs.writeFileSync(path.join(pkgDir, 'package.json'), JSON.stringify(manifest, null, 2) + '\n')
    via = 'npm publish of the platform packages with a binary'
  }
  // Its lifecycle scripts build from sources that the tarball does not ship.
  sh('npm', ['publish', '--ignore-scripts'], pkgDir, env)

  const view = (name: string): Record<string, unknown> | null => {
    const r = spawnSync('npm', ['view', '--json', `${name}@${version}`], { env, encoding: 'utf8', timeout: 60_000 })
    return r.status === 0 ? (JSON.parse(r.stdout) as Record<string, unknown>) : null
  }
  const published = platforms.filter((name) => view(name) !== null)
  const zcio = view('zcio')
  if (!zcio) throw new Error(`zcio@${version} is not on ${registryUrl} after npm publish`)
  return { version, platforms, published, via, optionalDependencies: (zcio.optionalDependencies ?? {}) as Record<string, string> }
}
