// Checks that every manifest released together carries the same version:
// the Cargo workspace (Cargo.toml [workspace.package]) and any crate that
// sets its own version, package.json, and each npm/*/package.json (with
// the root's optionalDependencies on them, when present).
//
//   node scripts/check-versions.ts v1.2.3   all of them must be 1.2.3
//   node scripts/check-versions.ts          they must agree with each other
//   ... --published                         and optionalDependencies must
//                                           name every npm/* package (as
//                                           `napi prepublish` writes them
//                                           before the root is published)
//
// Run from the repository root. Node 24 runs it as is (type stripping), so
// it uses only erasable TypeScript syntax, and require() rather than import
// because the root package.json has no "type" (the file is CommonJS).
// Exits 1 on any mismatch, with GitHub Actions ::error:: annotations.

const { existsSync, readdirSync, readFileSync } = require('node:fs') as typeof import('node:fs')
const { join } = require('node:path') as typeof import('node:path')

type Found = { file: string; version: string | undefined }

const root = process.cwd()

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(root, file), 'utf8')) as Record<string, unknown>
}

// The `version = "…"` key of one TOML table, e.g. [workspace.package].
function tomlVersion(file: string, table: string): string | undefined {
  let inTable = false
  for (const raw of readFileSync(join(root, file), 'utf8').split('\n')) {
    const line = raw.trim()
    const header = /^\[([^\]]+)\]$/.exec(line)
    if (header) {
      inTable = header[1].trim() === table
      continue
    }
    const m = inTable ? /^version\s*=\s*"([^"]*)"/.exec(line) : null
    if (m) return m[1]
  }
  return undefined
}

function subdirs(dir: string): string[] {
  if (!existsSync(join(root, dir))) return []
  return readdirSync(join(root, dir), { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort()
}

function collect(published: boolean): Found[] {
  const found: Found[] = [
    { file: 'Cargo.toml [workspace.package]', version: tomlVersion('Cargo.toml', 'workspace.package') },
  ]
  // Crates that inherit (`version.workspace = true`) have no literal version.
  for (const name of subdirs('crates')) {
    const file = `crates/${name}/Cargo.toml`
    if (!existsSync(join(root, file))) continue
    const version = tomlVersion(file, 'package')
    if (version !== undefined) found.push({ file, version })
  }

  const pkg = readJson('package.json')
  found.push({ file: 'package.json', version: pkg.version as string | undefined })
  const optional = (pkg.optionalDependencies ?? {}) as Record<string, string>

  const platforms = subdirs('npm').filter((d) => existsSync(join(root, 'npm', d, 'package.json')))
  if (platforms.length === 0) {
    found.push({ file: 'npm/*/package.json', version: undefined })
  }
  const names = new Set<string>()
  for (const dir of platforms) {
    const file = `npm/${dir}/package.json`
    const sub = readJson(file)
    found.push({ file, version: sub.version as string | undefined })
    const name = sub.name as string
    names.add(name)
    if (name in optional || published) {
      found.push({ file: `package.json optionalDependencies["${name}"]`, version: optional[name] })
    }
  }
  // A platform package named there but not built from npm/ would 404.
  for (const name of Object.keys(optional)) {
    if (name.startsWith(`${pkg.name as string}-`) && !names.has(name)) {
      found.push({ file: `package.json optionalDependencies["${name}"] (no npm/*/package.json has this name)`, version: undefined })
    }
  }
  return found
}

function main(argv: string[]): number {
  const published = argv.includes('--published')
  const tag = argv.filter((a) => a !== '--published')[0]
  let expected: string | undefined
  if (tag !== undefined && tag !== '') {
    const m = /^v(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)$/.exec(tag)
    if (!m) {
      console.error(`::error::tag "${tag}" is not v<major>.<minor>.<patch>[-pre]`)
      return 1
    }
    expected = m[1]
  }

  const found = collect(published)
  expected ??= found[0].version
  const width = Math.max(...found.map((f) => f.file.length))
  let bad = 0
  for (const { file, version } of found) {
    const ok = version !== undefined && version === expected
    if (!ok) bad++
    console.log(`${ok ? 'ok  ' : 'BAD '} ${file.padEnd(width)}  ${version ?? '(no version)'}`)
  }
  const against = tag ? `tag ${tag}` : `Cargo.toml ${expected ?? '(no version)'}`
  if (bad > 0) {
    console.error(`::error::${bad} of ${found.length} versions do not match ${against}`)
    return 1
  }
  console.log(`all ${found.length} versions match ${against}`)
  return 0
}

process.exitCode = main(process.argv.slice(2))
