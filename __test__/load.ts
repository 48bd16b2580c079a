// The package root and the package as users load it, for the tests (which run
// compiled, from __test__/build/) and the randomized driver (also run outside
// ava, by `npm run fuzz`).

import * as fs from 'node:fs'
import { createRequire } from 'node:module'
import * as path from 'node:path'

const require = createRequire(import.meta.url)

/** The package root: the nearest folder above this file with Cargo.toml. */
export const root = (() => {
  let dir = path.dirname(new URL(import.meta.url).pathname)
  while (!fs.existsSync(path.join(dir, 'Cargo.toml'))) {
    const up = path.dirname(dir)
    if (up === dir) throw new Error('package root not found')
    dir = up
  }
  return dir
})()

/** The package as users load it (package.json `main`: the TypeScript layer, compiled). */
export const zcio: typeof import('../index.js') = require(root)
