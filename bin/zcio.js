#!/usr/bin/env node
'use strict'

const fs = require('fs')
const path = require('path')
const { spawn } = require('child_process')

const USAGE = `Usage: zcio [bench] [options]

Commands:
  bench                  Read benchmark: zcio registered buffers next to
                         fs.read, FileHandle.read, fs.readSync (and fio when
                         installed) on one page-cache-warm file (default)

Options:
  --size <bytes>         File size: bytes or with a K/M/G/T suffix (1024-based),
                         e.g. 1G, 256M (default 1G, at least 1M)
  --duration <seconds>   Measured seconds per case, after a 0.3 s warm-up
                         (default 3)
  --file <path>          Create the test file at this new path, or in this
                         directory, instead of the OS temp directory; it is
                         deleted at the end
  --json <file>          Also write the results as JSON to <file>
  --quick                Smoke test: --size 64M --duration 1 (explicit
                         --size/--duration still win)
  -h, --help             Show this help

Progress goes to stderr, the result tables to stdout.
`

const UNITS = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }

function parseSize(text) {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text)
  if (!m) return NaN
  return Math.floor(Number(m[1]) * UNITS[m[2].toLowerCase()])
}

class UsageError extends Error {}

function parseArgs(argv) {
  const opts = { command: 'bench', help: false, size: undefined, durationSec: undefined, file: undefined, json: undefined, quick: false }
  let commandSeen = false
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '-h' || arg === '--help') {
      opts.help = true
      continue
    }
    if (!arg.startsWith('-')) {
      if (commandSeen) throw new UsageError(`unexpected argument: ${arg}`)
      if (arg === 'help') opts.help = true
      else if (arg !== 'bench') throw new UsageError(`unknown command: ${arg}`)
      commandSeen = true
      continue
    }
    const eq = arg.indexOf('=')
    const name = eq === -1 ? arg : arg.slice(0, eq)
    const takesValue = name === '--size' || name === '--duration' || name === '--file' || name === '--json'
    if (!takesValue) {
      if (name === '--quick' && eq === -1) {
        opts.quick = true
        continue
      }
      throw new UsageError(`unknown option: ${arg}`)
    }
    let value
    if (eq !== -1) value = arg.slice(eq + 1)
    else {
      if (i + 1 >= argv.length) throw new UsageError(`${name} needs a value`)
      value = argv[++i]
    }
    if (value === '') throw new UsageError(`${name} needs a value`)
    if (name === '--size') {
      const size = parseSize(value)
      if (!Number.isSafeInteger(size) || size < 1024 * 1024) {
        throw new UsageError(`--size: expected bytes or a size like 256M or 1G, at least 1M; got ${JSON.stringify(value)}`)
      }
      opts.size = size
    } else if (name === '--duration') {
      const d = /^\s*\d+(\.\d+)?\s*$|^\s*\.\d+\s*$/.test(value) ? Number(value) : NaN
      if (!(d > 0) || d > 3600) throw new UsageError(`--duration: expected seconds in (0, 3600]; got ${JSON.stringify(value)}`)
      opts.durationSec = d
    } else if (name === '--file') {
      opts.file = value
    } else {
      opts.json = value
    }
  }
  if (opts.quick) {
    if (opts.size === undefined) opts.size = 64 * 1024 * 1024
    if (opts.durationSec === undefined) opts.durationSec = 1
  }
  if (opts.file !== undefined) {
    let st = null
    try {
      st = fs.statSync(opts.file)
    } catch (e) {
      if (e.code !== 'ENOENT') throw new UsageError(`--file ${opts.file}: ${e.message}`)
    }
    if (st && !st.isDirectory()) {
      throw new UsageError(`--file ${opts.file} already exists; give a new path (it is created and deleted) or a directory`)
    }
    if (!st && !fs.existsSync(path.dirname(path.resolve(opts.file)))) {
      throw new UsageError(`--file ${opts.file}: directory ${path.dirname(path.resolve(opts.file))} does not exist`)
    }
  }
  if (opts.json !== undefined) {
    const dir = path.dirname(path.resolve(opts.json))
    if (!fs.existsSync(dir)) throw new UsageError(`--json ${opts.json}: directory ${dir} does not exist`)
  }
  return opts
}

// ---------------------------------------------------------------------------
// Formatting

function fmtInt(n) {
  return Math.round(n).toLocaleString('en-US')
}

function fmtGb(n) {
  return n >= 10 ? n.toFixed(2) : n.toFixed(3)
}

function fmtRatio(r) {
  if (r == null || !Number.isFinite(r)) return '-'
  return (r >= 10 ? r.toFixed(1) : r.toFixed(2)) + 'x'
}

function fmtBytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[u]}`
}

function fmtHeap(d) {
  if (d === undefined) return '-'
  const sign = d < 0 ? '-' : '+'
  const a = Math.abs(d)
  if (a < 1024) return `${sign}${a} B`
  if (a < 1024 * 1024) return `${sign}${(a / 1024).toFixed(1)} KiB`
  return `${sign}${(a / 1024 / 1024).toFixed(1)} MiB`
}

function table(rows, align) {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)))
  return rows
    .map((r) =>
      r
        .map((cell, c) => (align[c] === 'l' ? String(cell).padEnd(widths[c]) : String(cell).padStart(widths[c])))
        .join('  ')
        .trimEnd(),
    )
    .map((line, i) => (i === 0 ? line + '\n' + '-'.repeat(line.length) : line))
    .map((line) => '  ' + line.replace(/\n/, '\n  '))
    .join('\n')
}

function report(res) {
  const { machine: m, config: c } = res
  const out = []
  out.push(
    `zcio bench: ${m.cpus} CPU x ${m.cpuModel} | kernel ${m.kernelRelease} | Node ${m.node} | ` +
      `file ${fmtBytes(c.sizeBytes)} | ${c.durationSec} s per case (+${c.warmupSec} s warm-up)`,
  )
  out.push(`file: ${c.file} (page-cache warm, deleted)${res.fio ? ` | reference: ${res.fio.version}` : ''}`)
  for (const note of res.notes) out.push(`note: ${note}`)

  const showHeap = res.results.some((r) => r.heapDeltaBytes !== undefined)
  const head = ['case', 'depth', 'ops/s (IOPS)', 'GB/s', 'vs fs.read', 'vs fio']
  const align = ['l', 'r', 'r', 'r', 'r', 'r']
  if (showHeap) {
    head.push('heap delta')
    align.push('r')
  }
  const groups = [...new Set([...res.results, ...res.skipped].map((r) => r.group))]
  for (const group of groups) {
    const rows = [head]
    const entries = [
      ...res.results.filter((r) => r.group === group).map((r) => ({ kind: 'result', r })),
      ...res.skipped.filter((r) => r.group === group).map((r) => ({ kind: 'skipped', r })),
    ]
    for (const { kind, r } of entries) {
      if (kind === 'result') {
        const row = [r.name, r.depth, fmtInt(r.opsPerSec), fmtGb(r.gbPerSec), fmtRatio(r.ratioToFsRead), fmtRatio(r.ratioToFio)]
        if (showHeap) row.push(fmtHeap(r.heapDeltaBytes))
        rows.push(row)
      } else {
        const row = [r.name, r.depth, 'skipped', '-', '-', '-']
        if (showHeap) row.push('-')
        rows.push(row)
      }
    }
    if (res.fio) {
      for (const f of res.fio.runs.filter((x) => x.group === group)) {
        const row = f.error
          ? [`${f.name} (reference)`, f.depth, 'failed', '-', '-', '-']
          : [`${f.name} (reference)`, f.depth, fmtInt(f.iops), fmtGb(f.gbPerSec), fmtRatio(f.ratioToFsRead), f.fixedbufs ? fmtRatio(f.iops / refIops(res, group)) : fmtRatio(1)]
        if (showHeap) row.push('-')
        rows.push(row)
      }
    }
    out.push('')
    out.push(group)
    out.push(table(rows, align))
  }
  if (res.skipped.some((s) => !res.notes.some((n) => n.includes(s.reason)))) {
    out.push('')
    for (const reason of new Set(res.skipped.map((s) => s.reason))) {
      if (!res.notes.some((n) => n.includes(reason))) out.push(`skipped: ${reason}`)
    }
  }
  return out.join('\n') + '\n'
}

function refIops(res, group) {
  const ref = res.fio.runs.find((x) => x.group === group && !x.fixedbufs && !x.error)
  return ref ? ref.iops : NaN
}

function toJson(res) {
  return {
    machine: res.machine,
    config: res.config,
    zcio: res.zcio,
    results: res.results.map((r) => {
      const o = {
        group: r.group,
        name: r.name,
        depth: r.depth,
        opsPerSec: r.opsPerSec,
        gbPerSec: r.gbPerSec,
        ratioToFsRead: r.ratioToFsRead,
        ratioToFio: r.ratioToFio,
      }
      if (r.heapDeltaBytes !== undefined) o.heapDeltaBytes = r.heapDeltaBytes
      o.ops = r.ops
      o.elapsedSec = r.elapsedSec
      o.blockBytes = r.blockBytes
      return o
    }),
    skipped: res.skipped,
    fio: res.fio,
    notes: res.notes,
  }
}

// ---------------------------------------------------------------------------

// Heap deltas want `global.gc`: run again under --expose-gc, once.
function reexecWithGc(argv) {
  const child = spawn(process.execPath, [...process.execArgv, '--expose-gc', __filename, ...argv], {
    stdio: 'inherit',
    env: { ...process.env, ZCIO_BENCH_REEXEC: '1' },
  })
  const forward = (signal) => child.kill(signal)
  process.on('SIGINT', forward)
  process.on('SIGTERM', forward)
  child.on('error', (e) => {
    process.stderr.write(`zcio: cannot start ${process.execPath}: ${e.message}\n`)
    process.exit(1)
  })
  child.on('exit', (code, signal) => {
    process.removeListener('SIGINT', forward)
    process.removeListener('SIGTERM', forward)
    if (signal) process.kill(process.pid, signal)
    else process.exit(code == null ? 1 : code)
  })
}

async function main(argv) {
  let opts
  try {
    opts = parseArgs(argv)
  } catch (e) {
    if (!(e instanceof UsageError)) throw e
    process.stderr.write(`zcio: ${e.message}\nTry 'zcio --help'.\n`)
    return 2
  }
  if (opts.help) {
    process.stdout.write(USAGE)
    return 0
  }
  if (typeof global.gc !== 'function' && process.env.ZCIO_BENCH_REEXEC !== '1') {
    reexecWithGc(argv)
    return null
  }

  const { run } = require('../benches/fs-bench.js')
  let res
  try {
    res = await run({ size: opts.size, durationSec: opts.durationSec, file: opts.file })
  } catch (e) {
    process.stderr.write(`zcio bench: ${e.message}\n`)
    return e.code === 'ERR_ZCIO_BENCH_USAGE' ? 2 : 1
  }
  process.stdout.write(report(res))
  if (opts.json !== undefined) {
    try {
      fs.writeFileSync(opts.json, JSON.stringify(toJson(res), null, 2) + '\n')
    } catch (e) {
      process.stderr.write(`zcio bench: cannot write ${opts.json}: ${e.message}\n`)
      return 1
    }
    process.stderr.write(`results written to ${opts.json}\n`)
  }
  return 0
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== null) process.exitCode = code
  },
  (e) => {
    process.stderr.write(`zcio: ${e && e.stack ? e.stack : e}\n`)
    process.exitCode = 1
  },
)
