#!/usr/bin/env node
// Finds import circles between files: TypeScript (relative imports, type-only
// ones included: a circle of types is still a circle of concepts) and Rust
// (`mod`, `use crate::…`, `use super::…` and inline `crate::…` paths, resolved
// to the file of the module they name). Prints each circle and exits 1 if
// there is any.
//
//   node scripts/check-cycles.mjs [--graph] <dir|crate src dir>...
//
// A directory holding `lib.rs` or `main.rs` is read as a Rust crate; any other
// as TypeScript (its `.ts`/`.mts` files, recursively, `build/` left out).
// `--graph` also prints each file's dependencies.

import { readFileSync, readdirSync, statSync, existsSync } from 'node:fs'
import { join, relative, dirname, resolve } from 'node:path'

function walk(dir, keep) {
  const out = []
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'build' || name.startsWith('.')) continue
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...walk(p, keep))
    else if (keep(p)) out.push(p)
  }
  return out
}

function tsGraph(dir) {
  const files = walk(dir, (p) => /\.m?ts$/.test(p) && !p.endsWith('.d.ts') && !p.endsWith('.d.mts'))
  const known = new Set(files)
  const graph = new Map()
  const spec = /(?:import|export)\s+(?:type\s+)?(?:[^'"]*?\sfrom\s+)?['"](\.{1,2}\/[^'"]+)['"]/g
  for (const f of files) {
    const src = readFileSync(f, 'utf8')
    const deps = new Set()
    for (const m of src.matchAll(spec)) {
      const base = resolve(dirname(f), m[1])
      const cands = [base, base.replace(/\.m?js$/, '.ts'), base.replace(/\.mjs$/, '.mts'), base + '.ts', join(base, 'index.ts')]
      const hit = cands.find((c) => known.has(c))
      if (hit && hit !== f) deps.add(hit)
    }
    graph.set(f, deps)
  }
  return graph
}

function rustGraph(dir) {
  const files = walk(dir, (p) => p.endsWith('.rs'))
  // Module path ("a::b") of each file, and the file of each module path.
  const modOf = new Map()
  const fileOf = new Map()
  for (const f of files) {
    let rel = relative(dir, f).replace(/\.rs$/, '')
    if (rel === 'lib' || rel === 'main') rel = ''
    rel = rel.replace(/(^|\/)mod$/, '')
    const m = rel.split('/').filter(Boolean).join('::')
    modOf.set(f, m)
    fileOf.set(m, f)
  }
  const join2 = (a, b) => (a ? `${a}::${b}` : b)
  // The file of the longest module prefix of `path`.
  const fileFor = (path) => {
    const parts = path.split('::')
    for (let n = parts.length; n >= 0; n--) {
      const f = fileOf.get(parts.slice(0, n).join('::'))
      if (f !== undefined && n > 0) return f
    }
    return undefined
  }
  const graph = new Map()
  for (const f of files) {
    const me = modOf.get(f)
    // A file that is `x/mod.rs` or `x.rs` is module `x`; `super` is its parent.
    const parent = me.split('::').slice(0, -1).join('::')
    const src = readFileSync(f, 'utf8').replace(/\/\/.*$/gm, '')
    const deps = new Set()
    const add = (path) => {
      const t = fileFor(path)
      if (t && t !== f) deps.add(t)
    }
    for (const m of src.matchAll(/^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;/gm)) add(join2(me, m[1]))
    // `use` trees: expand one level of braces.
    for (const m of src.matchAll(/\buse\s+((?:crate|super|self)(?:::\w+)*)(?:::\{([^}]*)\})?/g)) {
      let root = m[1].replace(/^crate(::|$)/, '').replace(/^self(::|$)/, `${me}$1`)
      root = root.replace(/^super(::|$)/, parent ? `${parent}$1` : '')
      if (m[2] === undefined) add(root)
      else for (const item of m[2].split(',')) {
        const name = item.trim().split(/\s+as\s+|::/)[0]
        if (name === 'self') add(root)
        else if (name) add(join2(root, name))
      }
    }
    for (const m of src.matchAll(/(?<![\w:])(crate|super)::((?:\w+::)*\w+)/g)) {
      add(m[1] === 'crate' ? m[2] : join2(parent, m[2]))
    }
    graph.set(f, deps)
  }
  return graph
}

// Strongly connected components with more than one file (Tarjan).
function circles(graph) {
  let index = 0
  const idx = new Map(), low = new Map(), on = new Set(), stack = [], out = []
  const visit = (v) => {
    idx.set(v, index); low.set(v, index); index++
    stack.push(v); on.add(v)
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) { visit(w); low.set(v, Math.min(low.get(v), low.get(w))) }
      else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)))
    }
    if (low.get(v) === idx.get(v)) {
      const comp = []
      let w
      do { w = stack.pop(); on.delete(w); comp.push(w) } while (w !== v)
      if (comp.length > 1) out.push(comp)
    }
  }
  for (const v of graph.keys()) if (!idx.has(v)) visit(v)
  return out
}

const args = process.argv.slice(2)
const showGraph = args.includes('--graph')
const dirs = args.filter((a) => a !== '--graph')
if (dirs.length === 0) {
  console.error('usage: node scripts/check-cycles.mjs [--graph] <dir>...')
  process.exit(2)
}
let found = 0
for (const d of dirs) {
  const dir = resolve(d)
  const rust = existsSync(join(dir, 'lib.rs')) || existsSync(join(dir, 'main.rs'))
  const graph = rust ? rustGraph(dir) : tsGraph(dir)
  const name = (f) => relative(process.cwd(), f)
  if (showGraph) {
    for (const [f, deps] of [...graph].sort()) {
      console.log(`${name(f)} -> ${[...deps].map((x) => relative(dir, x)).sort().join(', ') || '(none)'}`)
    }
  }
  const cs = circles(graph)
  for (const c of cs) console.log(`circle in ${d}: ${c.map(name).sort().join(' <-> ')}`)
  console.log(`${d}: ${graph.size} files, ${cs.length} circle(s)`)
  found += cs.length
}
process.exit(found > 0 ? 1 : 0)
