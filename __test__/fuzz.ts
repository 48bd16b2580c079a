// Runs the model-based test of the JavaScript API (__test__/model) for as
// long as asked, then, in long runs, the core's property tests with many
// more cases.
//
// Compiled with the tests (npm run fuzz runs tsc first).
//
//   npm run fuzz                     5 minutes
//   npm run fuzz -- --time 1h        one hour, then PROPTEST_CASES=100000
//   ZCIO_FUZZ_SEED=... ZCIO_FUZZ_PATH=... npm run fuzz    replays a failure
//
// Options: --time DURATION (90s, 10m, 1h), --seed N, --commands N (longest
// sequence), --rust / --no-rust (the proptests run by default from 10 min),
// --proptest-cases N, --strict (no tolerance for known library bugs),
// --coverage (how often each command, outcome and check happened),
// --backend auto|io_uring|epoll (the rings' backend, as ZCIO_BACKEND; the
// Rust property tests run with it too).

import { spawnSync } from 'node:child_process'
import type { FuzzOptions } from './model/runner.js'

const args = process.argv.slice(2)
const opt = (name: string): string | undefined => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}

const backend = opt('--backend')
if (backend !== undefined) {
  if (!['auto', 'io_uring', 'epoll'].includes(backend)) {
    console.error(`zcio fuzz: --backend ${backend}: expected auto, io_uring or epoll`)
    process.exit(2)
  }
  // Read by every new Ring and probe() of this process (and of the cargo run
  // below); set before the model loads, as its modules probe when they load.
  process.env.ZCIO_BACKEND = backend
}
const { envOptions, fuzz, parseDuration } = await import('./model/runner.js')

const options: FuzzOptions = { timeMs: 5 * 60_000, log: (line) => console.log(line), ...envOptions(process.env) }
if (opt('--time')) options.timeMs = parseDuration(opt('--time')!)
if (opt('--seed')) options.seed = Number(opt('--seed'))
if (opt('--commands')) options.maxCommands = Number(opt('--commands'))
if (args.includes('--strict')) options.tolerateKnown = false
console.log(`zcio fuzz: backend ${process.env.ZCIO_BACKEND ?? 'auto'}`)
if (typeof globalThis.gc !== 'function') console.log('zcio fuzz: run with --expose-gc to include forced GC')

const result = await fuzz(options)
const rate = result.commands / (result.elapsedMs / 1000)
console.log(
  `zcio fuzz: ${result.ok ? 'passed' : 'failed'}: ${result.runs} runs, ${result.commands} commands in ${(result.elapsedMs / 1000).toFixed(1)} s (${rate.toFixed(0)} commands/s), seed ${result.seed}`,
)
if (args.includes('--coverage') || process.env.ZCIO_FUZZ_DEBUG) {
  for (const [what, n] of [...result.coverage].sort()) console.log(`  ${String(n).padStart(9)}  ${what}`)
}
if (!result.ok) {
  console.log(result.report)
  process.exit(1)
}

const rust = args.includes('--rust') || (!args.includes('--no-rust') && options.path === undefined && options.timeMs >= 10 * 60_000)
if (rust) {
  // proptest reads the number of cases from PROPTEST_CASES (Config::default()).
  const cases = opt('--proptest-cases') ?? '100000'
  console.log(`zcio fuzz: core property tests, PROPTEST_CASES=${cases}`)
  const r = spawnSync('cargo', ['test', '-p', 'zcio', '--release', '--lib', 'slots'], {
    stdio: 'inherit',
    env: { ...process.env, PROPTEST_CASES: cases },
  })
  if (r.status !== 0) process.exit(r.status ?? 1)
}
