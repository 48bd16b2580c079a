#!/usr/bin/env node
// Puts a platform check at the top of the generated loader, so that
// `require('zcio')` on macOS, Windows or anything else fails with a clear
// message instead of napi-rs's "Cannot find native binding".
'use strict'
const fs = require('node:fs')
const path = require('node:path')

const file = path.join(__dirname, '..', 'index.js')
const marker = '// zcio: Linux only'
const guard = `${marker}
if (process.platform !== 'linux') {
  const err = new Error(
    \`zcio needs Linux (io_uring); this is \${process.platform}. \` +
      'It runs on Linux 5.13+ on x64 and arm64, glibc or musl.',
  )
  err.code = 'ERR_ZCIO_UNSUPPORTED_PLATFORM'
  throw err
}
`
let src = fs.readFileSync(file, 'utf8')
if (!src.includes(marker)) {
  const lines = src.split('\n')
  // Keep the generated header comments (and 'use strict'-like pragmas) first.
  let at = 0
  while (at < lines.length && (lines[at].startsWith('//') || lines[at].startsWith('/*') || lines[at].trim() === '')) at++
  lines.splice(at, 0, guard)
  src = lines.join('\n')
  fs.writeFileSync(file, src)
}
