// The README's Rust quick start is the crate's doc test (cargo test runs it):
// the two copies must agree. The JavaScript and TypeScript examples run, as
// printed, against the package installed from a registry
// (readme-examples.ts, from registry.spec.ts).

import test from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { readmeBlock } from './readme-examples.js'
import { root } from './support.js'

test("the README's Rust quick start is the crate's doc test", (t) => {
  const crateReadme = fs.readFileSync(path.join(root, 'crates', 'zcio', 'README.md'), 'utf8')
  const first = /```rust\n([\s\S]*?)```/.exec(crateReadme)
  t.truthy(first, 'the crate README has a Rust example')
  t.is(readmeBlock('## Quick start (Rust)', 'rust'), first![1])
})

test('every ERR_ZCIO_ code a JavaScript caller can get is in the README', (t) => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8')
  // Borrow guards exist in Rust only.
  const rustOnly = new Set(['ERR_ZCIO_BUFFER_BORROWED'])
  const codes = new Set<string>()
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name)
      if (e.isDirectory()) walk(p)
      else if (/\.(rs|ts)$/.test(e.name)) for (const m of fs.readFileSync(p, 'utf8').matchAll(/['"](ERR_ZCIO_[A-Z_]+)['"]/g)) codes.add(m[1])
    }
  }
  for (const dir of ['crates/zcio/src', 'crates/zcio-node/src', 'src']) walk(path.join(root, dir))
  t.true(codes.size > 20, `found ${codes.size} codes`)
  const missing = [...codes].filter((c) => !rustOnly.has(c) && !new RegExp(`\`${c}\``).test(readme))
  t.deepEqual(missing, [])
})
