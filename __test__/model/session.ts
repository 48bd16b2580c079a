// What lives for a whole fuzzing session (FIFOs are slow to make).

import { execFileSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { ioUringFds, zcio } from './model.js'

export interface Session {
  dir: string
  fifos: { path: string; fd: number }[]
  workerFifo: { path: string; fd: number }
  workerFile: { path: string; fd: number }
  /** Registrations can fail with ENOMEM (RLIMIT_MEMLOCK applies). */
  memlockApplies: boolean
  hasGc: boolean
  /** io_uring instances open before the session (other users' rings). */
  ringFds: number
  close(): void
}

export function openSession(): Session {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zcio-fuzz-'))
  const fifo = (name: string) => {
    const p = path.join(dir, name)
    execFileSync('mkfifo', [p])
    return { path: p, fd: fs.openSync(p, fs.constants.O_RDWR | fs.constants.O_NONBLOCK) }
  }
  const fifos = [fifo('pipe0'), fifo('pipe1')]
  const workerFifo = fifo('worker-pipe')
  const wf = path.join(dir, 'worker-file')
  fs.writeFileSync(wf, Buffer.alloc(64 * 1024, 7))
  const workerFile = { path: wf, fd: fs.openSync(wf, 'r') }
  const p = zcio.probe()
  let capIpcLock = false
  try {
    const eff = /CapEff:\s*([0-9a-f]+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1]
    capIpcLock = eff !== undefined && (BigInt('0x' + eff) & (1n << 14n)) !== 0n
  } catch {
    // Not Linux procfs: assume the limit applies.
  }
  return {
    dir,
    fifos,
    workerFifo,
    workerFile,
    memlockApplies: p.memlockNeeded && !capIpcLock && p.memlockLimit !== undefined && p.memlockLimit !== null,
    hasGc: typeof globalThis.gc === 'function',
    ringFds: ioUringFds(),
    close() {
      for (const f of [...fifos, workerFifo, workerFile]) fs.closeSync(f.fd)
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}
