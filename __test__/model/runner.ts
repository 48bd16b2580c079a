// Runs the model-based test for a bounded time, or replays one failure.
//
// Used by __test__/model.spec.ts (under ava, as part of `npm test`) and by
// scripts/fuzz.mts (`npm run fuzz -- --time 1h`).

import fc from 'fast-check'
import { commandsArb, addRing, addPool } from './commands.js'
import { HangError, ModelError, coverage } from './model.js'
import { openSession, type Session } from './session.js'
import { World } from './world.js'

export const DEFAULT_MAX_COMMANDS = 60
const RUNS_PER_BATCH = 25
/**
 * How long shrinking a failure may take: past it the smallest sequence found
 * so far is reported (a timing-dependent failure can make each candidate wait
 * for seconds, and the whole test has a deadline).
 */
const SHRINK_BUDGET_MS = 90_000

export interface FuzzOptions {
  /** How long to generate new sequences (shrinking a failure may take longer). */
  timeMs: number
  /** fast-check seed; random when absent. */
  seed?: number
  /** Replays one counterexample (with `seed`): fast-check's counterexample path. */
  path?: string
  /** fast-check's replay path of the commands, printed with a failure. */
  replayPath?: string
  maxCommands?: number
  /** Tolerate the known library bugs (see KNOWN_ISSUES in model.ts). */
  tolerateKnown?: boolean
  log: (line: string) => void
}

export interface FuzzResult {
  ok: boolean
  /** How often each command, outcome and check happened. */
  coverage: Map<string, number>
  seed: number
  runs: number
  commands: number
  elapsedMs: number
  /** The failure: message, shrunk sequence, concrete trace, replay command. */
  report?: string
}

export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim())
  if (!m) throw new Error(`not a duration: ${text} (e.g. 90s, 10m, 1h)`)
  const n = Number(m[1])
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  return n * unit[m[2] ?? 's']
}

/** The first objects of every run: most commands need a ring and a pool. */
function initialWorld(session: Session, tolerateKnown: boolean): World {
  const w = new World(session, { tolerateKnown })
  w.log('-- start')
  const r = addRing(w, 8, false)!
  addPool(w, r, 4096, 4)
  return w
}

type Cmds = Iterable<fc.AsyncCommand<World, World>>

async function runOnce(session: Session, cmds: Cmds, tolerateKnown: boolean, onWorld?: (w: World) => void): Promise<World> {
  const w = initialWorld(session, tolerateKnown)
  onWorld?.(w)
  try {
    await fc.asyncModelRun(() => ({ model: w, real: w }), cmds)
    await w.finish()
  } finally {
    await w.cleanup()
  }
  await w.checkReleased()
  return w
}

export async function fuzz(o: FuzzOptions): Promise<FuzzResult> {
  const started = Date.now()
  const seed = o.seed ?? (Math.floor(Math.random() * 2 ** 31) ^ Date.now()) >>> 0
  const maxCommands = o.maxCommands ?? DEFAULT_MAX_COMMANDS
  const tolerateKnown = o.tolerateKnown ?? true
  const replaying = o.path !== undefined
  const session = openSession()
  coverage.clear()
  let runs = 0
  let commands = 0
  let failedOnce = false
  let shrinkEnds = Infinity
  let last: World | undefined
  o.log(
    replaying
      ? `zcio fuzz: replaying seed ${seed}, path ${o.path}`
      : `zcio fuzz: seed ${seed} (batches of ${RUNS_PER_BATCH} runs use seeds ${seed}, ${seed + 1}, ...), for ${Math.round(o.timeMs / 1000)} s, up to ${maxCommands} commands per run`,
  )
  const property = fc.asyncProperty(commandsArb(maxCommands, o.replayPath), async (cmds) => {
    // Out of time: pass without running, unless a failure is being shrunk.
    if (!replaying && !failedOnce && Date.now() - started > o.timeMs) return
    // Shrinking out of time (or after a hang): the candidates left pass unrun.
    if (Date.now() > shrinkEnds) return
    try {
      const w = await runOnce(session, cmds, tolerateKnown, (x) => {
        last = x
      })
      commands += w.commands
      runs++
      if (process.env.ZCIO_FUZZ_DEBUG) o.log(`run ${runs}: ${w.commands} commands, ${w.trace.length} trace lines`)
    } catch (e) {
      if (last) commands += last.commands
      runs++
      if (!failedOnce) {
        failedOnce = true
        shrinkEnds = Date.now() + SHRINK_BUDGET_MS
        // Said at once: if shrinking or the replay hangs, this is what is left.
        o.log(`zcio fuzz: run ${runs} failed, shrinking for up to ${SHRINK_BUDGET_MS / 1000} s: ${e instanceof Error ? e.message : String(e)}`)
        for (const t of last?.trace.slice(-40) ?? []) o.log(`  ${t}`)
      }
      // A hang leaves its promises and rings behind, which would fail every
      // later candidate for a different reason: report the sequence as it is.
      if (e instanceof HangError) shrinkEnds = 0
      throw e
    }
  })
  try {
    // Batches of runs, each with its own seed (printed with a failure), until
    // the time is up: fast-check would otherwise generate all its runs.
    let details: fc.RunDetails<[Cmds]> | undefined
    for (let batch = 0; ; batch++) {
      const batchSeed = (seed + batch) >>> 0
      details = await fc.check(property, {
        seed: batchSeed,
        numRuns: replaying ? 1 : RUNS_PER_BATCH,
        path: o.path,
        endOnFailure: replaying,
      })
      if (details.failed || replaying || Date.now() - started > o.timeMs) break
    }
    const elapsedMs = Date.now() - started
    if (!details.failed) {
      return { ok: true, seed, runs, commands, elapsedMs, coverage: new Map(coverage) }
    }
    const counterexample = details.counterexample?.[0] as Cmds | undefined
    const shown = counterexample ? fc.stringify(counterexample) : '(none)'
    const replayPath = /replayPath="([^"]*)"/.exec(shown)?.[1]
    const error = details.errorInstance
    const message = error instanceof ModelError ? error.message : error instanceof Error ? (error.stack ?? error.message) : String(error)
    const lines = [
      `zcio fuzz: FAILED (seed ${details.seed}, path ${details.counterexamplePath}) after ${runs} runs, ${details.numShrinks} shrinks`,
      '',
      message,
      '',
      'Shrunk sequence:',
    ]
    const steps = counterexample ? [...counterexample] : []
    steps.forEach((c, k) => lines.push(`  ${k + 1}. ${String(c).replace(/^\/\*.*\*\/\s*/, '')}`))
    // Run it once more to show what each step did, concretely.
    if (counterexample) {
      let w: World | undefined
      let again = 'passed this time (timing-dependent)'
      try {
        await runOnce(session, counterexample, tolerateKnown, (x) => {
          w = x
        })
      } catch (e) {
        again = `failed again: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`
      }
      lines.push('', `Replayed once more, it ${again}. Trace:`)
      for (const t of w?.trace ?? []) lines.push(`  ${t}`)
    }
    const env = [`ZCIO_FUZZ_SEED=${details.seed}`, `ZCIO_FUZZ_PATH='${details.counterexamplePath}'`]
    if (replayPath) env.push(`ZCIO_FUZZ_REPLAY='${replayPath}'`)
    if (maxCommands !== DEFAULT_MAX_COMMANDS) env.push(`ZCIO_FUZZ_COMMANDS=${maxCommands}`)
    lines.push('', `Replay: ${env.join(' ')} npm run fuzz`)
    return { ok: false, seed, runs, commands, elapsedMs, coverage: new Map(coverage), report: lines.join('\n') }
  } finally {
    session.close()
  }
}

/** Options from ZCIO_FUZZ_* variables (for replaying under ava or the script). */
export function envOptions(env: NodeJS.ProcessEnv): Partial<FuzzOptions> {
  const out: Partial<FuzzOptions> = {}
  if (env.ZCIO_FUZZ_SEED) out.seed = Number(env.ZCIO_FUZZ_SEED)
  if (env.ZCIO_FUZZ_PATH) out.path = env.ZCIO_FUZZ_PATH
  if (env.ZCIO_FUZZ_REPLAY) out.replayPath = env.ZCIO_FUZZ_REPLAY
  if (env.ZCIO_FUZZ_COMMANDS) out.maxCommands = Number(env.ZCIO_FUZZ_COMMANDS)
  if (env.ZCIO_FUZZ_TIME) out.timeMs = parseDuration(env.ZCIO_FUZZ_TIME)
  if (env.ZCIO_FUZZ_STRICT === '1') out.tolerateKnown = false
  return out
}
