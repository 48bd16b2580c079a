'use strict'
// Preload (`node -r scripts/map-net.cjs`): a program's `require('net')` and
// `import 'node:net'` get zcio.net; zcio's own files keep node:net. Used by
// scripts/node-net-tests.sh to run Node's own net tests against zcio.net.
const Module = require('node:module')
const path = require('node:path')
const root = path.resolve(__dirname, '..')
const inside = (file) => typeof file === 'string' && file.startsWith(root + path.sep)
const load = Module._load
let net
Module._load = function (request, parent, isMain) {
  if ((request === 'net' || request === 'node:net') && !(parent && inside(parent.filename))) {
    net ??= load.call(this, root, parent, false).net
    return net
  }
  return load.call(this, request, parent, isMain)
}
if (typeof Module.register === 'function') {
  const rootUrl = require('node:url').pathToFileURL(root + path.sep).href
  const hook = `export async function resolve(spec, ctx, next) {
    if ((spec === 'net' || spec === 'node:net') && !(ctx.parentURL ?? '').startsWith(${JSON.stringify(rootUrl)})) {
      return { url: ${JSON.stringify(rootUrl + 'net.mjs')}, shortCircuit: true }
    }
    return next(spec, ctx)
  }`
  Module.register('data:text/javascript,' + encodeURIComponent(hook))
}
