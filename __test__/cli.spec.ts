// The `zcio` command as installed (dist/bin/zcio.js): version, help, usage
// errors, `--check` exit codes (forced both ways with `--bar-scale`, on real
// measurements) and the width of what it prints.

import test from 'ava'
import type { ExecutionContext } from 'ava'
import { execFile } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { can, missing, root } from './support.js'

const CLI = path.join(root, 'dist', 'bin', 'zcio.js')

interface Run {
  code: number | null
  stdout: string
  stderr: string
  ms: number
}

/** Runs the command with `args` in a fresh TMPDIR (where the bench would put its file); resolves however it exits. */
function zcio(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Run & { tmp: string[] }> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'zcio-cli-'))
  const start = Date.now()
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, TMPDIR: tmp, COLUMNS: '', ...env }, timeout: 120_000, maxBuffer: 4 << 20 },
      (err, stdout, stderr) => {
        const left = fs.readdirSync(tmp)
        fs.rmSync(tmp, { recursive: true, force: true })
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0
        resolve({ code, stdout, stderr, ms: Date.now() - start, tmp: left })
      },
    )
  })
}

function longLines(text: string, width: number): string[] {
  return text.split('\n').filter((l) => l.length > width)
}

/** The tables and notes (stdout) fit `width`; progress lines (stderr) fit 100 columns whatever the width. */
function fits(t: ExecutionContext, r: Run, width: number, what: string): void {
  t.deepEqual(longLines(r.stdout, width), [], `${what}: stdout lines over ${width} columns`)
  t.deepEqual(longLines(r.stderr, 100), [], `${what}: stderr lines over 100 columns`)
}

const pkgVersion = (JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version

test('--version and -v print the package version alone', async (t) => {
  for (const flag of ['--version', '-v']) {
    const r = await zcio([flag])
    t.is(r.code, 0, flag)
    t.is(r.stdout, `${pkgVersion}\n`, flag)
    t.is(r.stderr, '', flag)
  }
})

test('bare zcio prints the help and exits 0 at once, without creating a bench file', async (t) => {
  const r = await zcio([])
  t.is(r.code, 0)
  for (const part of ['Usage: zcio bench', 'Commands:', 'Options (bench):', 'Options (bench net):', '--check', '--version', 'Examples:']) {
    t.true(r.stdout.includes(part), `help lacks ${part}`)
  }
  t.deepEqual(r.tmp, [], 'files left in TMPDIR')
  t.true(r.ms < 10_000, `took ${r.ms} ms`)
  fits(t, r, 80, 'help')
  for (const args of [['--help'], ['-h'], ['help'], ['help', 'bench'], ['bench', '--help'], ['bench', 'net', '-h']]) {
    const h = await zcio(args)
    t.is(h.code, 0, args.join(' '))
    t.is(h.stdout, r.stdout, `${args.join(' ')}: not the same help`)
  }
})

test('an unknown command or option exits 2, naming it, with a hint', async (t) => {
  const cases: [string[], RegExp][] = [
    [['bench', '--bogus'], /unknown option: --bogus/],
    [['bench', '--quik'], /unknown option: --quik \(did you mean --quick\?\)/],
    [['frobnicate'], /unknown command: frobnicate/],
    [['bnech'], /unknown command: bnech \(did you mean bench\?\)/],
    [['--quick'], /no command was given: 'zcio bench --quick'/],
    [['bench', 'net', '--calls'], /--calls is an option of 'zcio bench'/],
    [['bench', '--bar-scale', '0'], /--bar-scale: expected a factor above 0/],
  ]
  for (const [args, message] of cases) {
    const r = await zcio(args)
    t.is(r.code, 2, args.join(' '))
    t.regex(r.stderr, message, args.join(' '))
    t.regex(r.stderr, /Try 'zcio --help'\./, args.join(' '))
    t.is(r.stdout, '', args.join(' '))
    t.deepEqual(r.tmp, [], `${args.join(' ')}: files left in TMPDIR`)
  }
})

// The runs below measure for real; serial, so they do not slow each other.
// Their bars need a ring and a pool: without fixed buffers every bar is n/a.
const canMeasure = can('fixedBuffers')
const measured = canMeasure || process.env.ZCIO_REQUIRE_IO_URING === '1' ? test.serial : test.serial.skip
if (!canMeasure) console.warn(`zcio: skipping the measuring CLI tests: ${missing('fixedBuffers')}`)

measured('zcio bench --quick: every line fits 100 columns, exit 0, the file is removed', async (t) => {
  t.timeout(150_000)
  const r = await zcio(['bench', '--quick'])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /random 4K d1[\s\S]*per call:[\s\S]*summary/)
  t.deepEqual(r.tmp, [], 'bench file left in TMPDIR')
  fits(t, r, 100, 'zcio bench --quick')
})

measured('--check exits 1 naming the bars that miss (bars held 1000x as strict), in 80 columns', async (t) => {
  t.timeout(120_000)
  const r = await zcio(['bench', '--quick', '--size', '1M', '--duration', '0.1', '--check', '--bar-scale', '1000'], { COLUMNS: '80' })
  t.is(r.code, 1, r.stderr)
  t.regex(r.stdout, /bars held 1000x as strict/)
  t.regex(r.stdout, /check: MISS: \d+ of \d+ measured bars missed/)
  t.regex(r.stdout, /\n {2}per call: pool\.get\(i\): [\d.]+ ns, needs <= 0\.05 ns\n/)
  fits(t, r, 80, 'COLUMNS=80 zcio bench --check')
})

measured('--check exits 0 when every bar is met (bars held 1000x as loose)', async (t) => {
  t.timeout(120_000)
  const r = await zcio(['bench', '--quick', '--size', '1M', '--duration', '0.1', '--check', '--bar-scale', '0.001'])
  t.is(r.code, 0, r.stdout + r.stderr)
  t.regex(r.stdout, /check: pass: all \d+ measured bars met/)
  t.notRegex(r.stdout, /MISS/)
})

measured('--calls: --check judges the per-call targets; without --check a miss still exits 0', async (t) => {
  t.timeout(60_000)
  const miss = await zcio(['bench', '--calls', '--quick', '--bar-scale', '1000'])
  t.is(miss.code, 0, miss.stderr)
  t.regex(miss.stdout, /MISS/)
  t.notRegex(miss.stdout, /check:/)
  const missChecked = await zcio(['bench', '--calls', '--quick', '--check', '--bar-scale', '1000'])
  t.is(missChecked.code, 1, missChecked.stderr)
  t.regex(missChecked.stdout, /check: MISS: (\d+) of \1 measured bars missed/)
  const pass = await zcio(['bench', '--calls', '--quick', '--check', '--bar-scale', '0.001'])
  t.is(pass.code, 0, pass.stdout + pass.stderr)
  t.regex(pass.stdout, /check: pass: all \d+ measured bars met/)
  fits(t, pass, 100, 'zcio bench --calls')
})
