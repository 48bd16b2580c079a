// This process's soft descriptor limit, set by a helper process.
//
// A process that has used up its descriptors cannot start a child (a spawn
// needs pipes), and the model lowers the limit precisely to use them up; so
// raising it back with `spawnSync('prlimit')` could fail for as long as
// waiting accepts held the descriptors just freed. The helper is started
// while descriptors are plentiful and is told each new limit over the pipe it
// already has, which needs no new descriptor in this process.

import { type ChildProcessByStdio, spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as readline from 'node:readline'

const SCRIPT = 'while read n; do prlimit --pid "$1" --nofile="$n": >/dev/null 2>&1 && echo ok || echo fail; done'

type Child = ChildProcessByStdio<import('node:stream').Writable, import('node:stream').Readable, null>

let helper: { child: Child; replies: ((ok: boolean) => void)[]; alive: boolean } | undefined

/** The soft limit on open descriptors, as the kernel reports it for this process. */
export function softLimit(): number {
  return Number(fs.readFileSync('/proc/self/limits', 'utf8').match(/Max open files\s+(\d+)/)?.[1])
}

/** Starts the helper if none is running; call while descriptors are plentiful. */
export function startLimitHelper(): void {
  if (helper?.alive) return
  const child = spawn('sh', ['-c', SCRIPT, 'sh', String(process.pid)], { stdio: ['pipe', 'pipe', 'ignore'] })
  const h = { child, replies: [] as ((ok: boolean) => void)[], alive: true }
  const gone = () => {
    h.alive = false
    for (const r of h.replies.splice(0)) r(false)
  }
  child.on('error', gone)
  child.on('exit', gone)
  child.stdin.on('error', gone)
  readline.createInterface({ input: child.stdout }).on('line', (line) => h.replies.shift()?.(line === 'ok'))
  idle(h.child)
  helper = h
}

/** Sets the soft limit to `n`; false when prlimit is missing or refused, or the helper is gone. */
export async function setSoftLimit(n: number): Promise<boolean> {
  const h = helper
  if (!h?.alive) return false
  busy(h.child)
  try {
    return await new Promise<boolean>((resolve) => {
      h.replies.push(resolve)
      h.child.stdin.write(`${n}\n`)
    })
  } finally {
    if (h.replies.length === 0) idle(h.child)
  }
}

// The helper keeps the process alive only while a reply is awaited.
function idle(c: Child): void {
  c.unref()
  ;(c.stdout as unknown as { unref(): void }).unref()
  ;(c.stdin as unknown as { unref(): void }).unref()
}
function busy(c: Child): void {
  c.ref()
  ;(c.stdout as unknown as { ref(): void }).ref()
  ;(c.stdin as unknown as { ref(): void }).ref()
}
