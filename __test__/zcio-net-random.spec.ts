// Random conversations over one connection, run on node:net (the oracle)
// and on zcio.net: writes of random sizes from both sides, pauses and
// resumes of either reader, ends in any order with and without
// allowHalfOpen, waits between steps, and an optional destroy at the end.
// Each side must receive exactly the bytes the other wrote, and see the
// same events (end, finish, close and its hadError, errors) on both
// modules. fast-check shrinks a failing conversation to a short one.

import test from 'ava'
import fc from 'fast-check'
import { createHash } from 'node:crypto'
import type * as nodeNet from 'node:net'
import * as nodeNetModule from 'node:net'
import { needs, slow } from './support.js'
import { type Net, listen, turn, zcioNet } from './zcio-net-support.js'
import { payload } from './net-support.js'

const netTest = needs('bufRing')

type Side = 'client' | 'server'
type Step =
  | { op: 'write'; side: Side; len: number; seed: number }
  | { op: 'pause' | 'resume'; side: Side }
  | { op: 'end'; side: Side }
  | { op: 'wait'; ms: number }

interface Plan {
  allowHalfOpen: boolean
  steps: Step[]
  /** Destroy this side once the steps ran, instead of ending. */
  destroy: Side | null
}

const side = fc.constantFrom<Side>('client', 'server')
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ op: fc.constant('write' as const), side, len: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 300_000 })), seed: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constantFrom('pause' as const, 'resume' as const), side }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('end' as const), side }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 15 }) }) },
)

/**
 * A plan both modules must run the same way whatever the timing: no write
 * after the writer's own end; without allowHalfOpen the peer's end ends a
 * side at a time that depends on the scheduler, so there ends come last.
 */
const plan: fc.Arbitrary<Plan> = fc
  .record({ allowHalfOpen: fc.boolean(), steps: fc.array(step, { maxLength: 14 }), destroy: fc.option(side, { freq: 4 }) })
  .map((p) => {
    const ended = new Set<Side>()
    const steps: Step[] = []
    for (const s of p.steps) {
      if (s.op === 'write' && ended.has(s.side)) continue
      if (s.op === 'end') {
        if (!p.allowHalfOpen || ended.has(s.side)) continue
        ended.add(s.side)
      }
      steps.push(s)
    }
    return { ...p, steps }
  })

interface SideLog {
  received: string
  bytes: number
  events: string[]
}

function digest(chunks: Buffer[]): string {
  const h = createHash('sha256')
  for (const c of chunks) h.update(c)
  return h.digest('hex').slice(0, 16)
}

/** Runs `p` on `net`; what each side received and saw. */
async function conversation(net: Net, p: Plan): Promise<{ logs: Record<Side, SideLog>; wrote: Record<Side, string> }> {
  const got: Record<Side, Buffer[]> = { client: [], server: [] }
  const sent: Record<Side, Buffer[]> = { client: [], server: [] }
  const events: Record<Side, string[]> = { client: [], server: [] }
  const closed: Record<Side, Promise<void>> = {} as Record<Side, Promise<void>>
  const sockets: Partial<Record<Side, nodeNet.Socket>> = {}
  const watch = (who: Side, s: nodeNet.Socket): void => {
    sockets[who] = s
    s.on('data', (d: Buffer) => got[who].push(d))
    s.on('end', () => events[who].push('end'))
    s.on('finish', () => events[who].push('finish'))
    s.on('error', (e: NodeJS.ErrnoException) => events[who].push(`error ${e.code}`))
    closed[who] = new Promise((r) => s.once('close', (hadError: boolean) => r(void events[who].push(`close ${hadError}`))))
  }
  let accepted!: () => void
  const isAccepted = new Promise<void>((r) => (accepted = r))
  const { server, port } = await listen(net, { allowHalfOpen: p.allowHalfOpen }, (s) => {
    watch('server', s)
    accepted()
  })
  const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: p.allowHalfOpen })
  watch('client', c)
  await Promise.all([new Promise((r) => c.once('connect', r)), isAccepted])
  for (const s of p.steps) {
    if (s.op === 'wait') await turn(s.ms)
    else if (s.op === 'write') {
      const b = payload(s.len, s.seed)
      sent[s.side].push(b)
      sockets[s.side]!.write(b)
    } else if (s.op === 'end') sockets[s.side]!.end()
    else sockets[s.side]![s.op]()
  }
  if (p.destroy) {
    sockets[p.destroy]!.destroy()
    const other = p.destroy === 'client' ? 'server' : 'client'
    // The peer sees an end or a reset, as the scheduler has it: not compared.
    sockets[other]!.on('error', () => {})
    sockets[other]!.resume()
    sockets[other]!.end()
  } else {
    for (const who of ['client', 'server'] as const) {
      sockets[who]!.resume()
      sockets[who]!.end()
    }
  }
  await Promise.all([closed.client, closed.server])
  await new Promise<void>((r) => server.close(() => r()))
  const logs = {} as Record<Side, SideLog>
  for (const who of ['client', 'server'] as const) {
    logs[who] = { received: digest(got[who]), bytes: got[who].reduce((n, b) => n + b.length, 0), events: events[who] }
  }
  return { logs, wrote: { client: digest(sent.client), server: digest(sent.server) } }
}

/**
 * A side's events with the read side's ('end') and the write side's
 * ('finish') in a fixed order: which of the two comes first depends on when
 * the peer's end arrives against when the last write is done, on either
 * module. 'close' (last) and errors keep their places.
 */
function normal(events: string[]): string {
  const sides = events.filter((e) => e === 'end' || e === 'finish').sort()
  return [...sides, ...events.filter((e) => e !== 'end' && e !== 'finish')].join(', ')
}

/** `p`, or a failure naming `what` if it takes more than 20 s (a hang). */
function bounded<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const hang = new Promise<never>((_r, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: the conversation did not end within 20 s`)), 20_000 * slow)
  })
  return Promise.race([p, hang]).finally(() => clearTimeout(timer))
}

netTest('random conversations: each side gets the bytes the other wrote, and the same events as on node:net', async (t) => {
  t.timeout(180_000 * slow)
  await fc.assert(
    fc.asyncProperty(plan, async (p) => {
      try {
        await compare(p)
      } catch (e) {
        t.log(`${JSON.stringify(p)}: ${(e as Error).message}`)
        throw e
      }
    }),
    { numRuns: 300, verbose: true, endOnFailure: true, ...(process.env.ZCIO_NET_SEED ? { seed: Number(process.env.ZCIO_NET_SEED) } : {}) },
  )
  t.pass()

  async function compare(p: Plan): Promise<void> {
      const oracle = await bounded(conversation(nodeNetModule as Net, p), 'node:net')
      const ours = await bounded(conversation(zcioNet, p), 'zcio.net')
      if (p.destroy) {
        // Only the destroying side is fixed: it closes without an error
        // ('finish' of an end() just before, or 'end' of a peer that ended,
        // comes or not, as the timing has it).
        const fixed = (e: string[]): string => e.filter((x) => x !== 'finish' && x !== 'end').join(', ')
        const a = fixed(ours.logs[p.destroy].events)
        const b = fixed(oracle.logs[p.destroy].events)
        if (a !== b) throw new Error(`destroying ${p.destroy}: zcio.net saw [${a}], node:net [${b}]`)
        return
      }
      for (const who of ['client', 'server'] as const) {
        const peer = who === 'client' ? 'server' : 'client'
        if (ours.logs[who].received !== ours.wrote[peer]) throw new Error(`${who} received ${ours.logs[who].bytes} bytes that are not what the ${peer} wrote`)
        if (oracle.logs[who].received !== oracle.wrote[peer]) throw new Error(`node:net's ${who} did not get what its ${peer} wrote`)
        const a = normal(ours.logs[who].events)
        const b = normal(oracle.logs[who].events)
        if (a !== b) throw new Error(`${who}: zcio.net saw [${a}], node:net [${b}]`)
      }
  }
})
