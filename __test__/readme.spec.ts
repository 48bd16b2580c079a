// The README's Rust quick start is the crate's doc test (cargo test runs it):
// the two copies must agree. The JavaScript and TypeScript examples run, as
// printed, against the installed package (readme-examples.ts, from
// package.spec.ts).

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
