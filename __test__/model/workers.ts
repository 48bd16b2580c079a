// Commands: workers that run their own ring and get terminated mid-flight.

import fc from 'fast-check'
import { Worker } from 'node:worker_threads'
import { Cmd } from './cmd.js'
import { SETTLE_TIMEOUT_MS, fail, root, show, sleep } from './model.js'
import type { World } from './world.js'

const MAX_WORKERS = 2

// Workers terminated mid-flight

const WORKER_CODE = `
const { parentPort, workerData: d } = require('node:worker_threads')
const z = require(d.root)
function start() {
  const ring = new z.Ring({ entries: d.entries })
  const pool = new z.RegisteredBufferPool(ring, 4096, 4)
  const a = pool.acquire(), b = pool.acquire(), c = pool.acquire()
  // Never completes: nobody writes to this FIFO.
  pool.readFixed(d.fifo, a.index, 0, 4096).catch(() => {})
  pool.submitReadFixed(d.fifo, b.index, 0, 100)
  if (d.mode === 'drop') return () => 0 // ring and pool unreachable from here on
  let reads = 0
  const loop = () => pool.readFixed(d.file, c.index, 0, 4096).then(() => { reads++; if (reads < 1e6) loop() }, () => {})
  loop()
  if (d.mode === 'close') ring.close()
  return () => reads
}
const reads = start()
if (d.mode === 'drop' && globalThis.gc) globalThis.gc()
setTimeout(() => parentPort.postMessage({ reads: reads() }), d.delay)
`

class WorkerRun extends Cmd {
  constructor(readonly mode: 'pending' | 'close' | 'drop' | 'early', readonly delay: number, readonly entries: number) {
    super()
  }
  check(w: World) {
    return w.workersStarted < MAX_WORKERS
  }
  async act(w: World) {
    w.workersStarted++
    const s = w.session
    const worker = new Worker(WORKER_CODE, {
      eval: true,
      workerData: { root, fifo: s.workerFifo.fd, file: s.workerFile.fd, mode: this.mode, delay: this.delay, entries: this.entries },
    })
    let error: unknown
    worker.on('error', (e) => {
      error = e
    })
    const exited = new Promise<number>((resolve) => worker.once('exit', resolve))
    if (this.mode !== 'early') {
      const ready = await Promise.race([
        new Promise<string>((resolve) => worker.once('message', (m) => resolve(`ready ${show(m)}`))),
        exited.then((code) => `exited with ${code}`),
        sleep(SETTLE_TIMEOUT_MS * 2).then(() => 'timeout'),
      ])
      w.log(`  worker ${ready}`)
      if (!ready.startsWith('ready')) fail(`worker (${this.mode}) ${ready}${error ? `: ${(error as Error).stack}` : ''}`)
    }
    const started = Date.now()
    const terminated = await Promise.race([worker.terminate(), sleep(SETTLE_TIMEOUT_MS * 2).then(() => 'timeout')])
    if (terminated === 'timeout') fail(`worker.terminate() (${this.mode}) did not finish in ${SETTLE_TIMEOUT_MS * 2} ms`)
    const code = await exited
    w.log(`  worker terminated in ${Date.now() - started} ms, exit code ${code}`)
    if (error) fail(`worker (${this.mode}) failed: ${(error as Error).stack}`)
  }
  toString() {
    return `worker(${this.mode}, ready after ${this.delay} ms, entries ${this.entries}), then terminate()`
  }
}

export const workerCmd = fc
  .record({ m: fc.constantFrom<WorkerRun['mode']>('pending', 'close', 'drop', 'early'), d: fc.nat(20), e: fc.constantFrom(1, 4, 64) })
  .map(({ m, d, e }) => new WorkerRun(m, d, e))

