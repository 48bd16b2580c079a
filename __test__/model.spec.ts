// The model-based test of the JavaScript API (see __test__/model/), for a
// bounded time: ZCIO_FUZZ_TIME (default 60s). A failure prints the shrunk
// sequence and the command that replays it; ZCIO_FUZZ_SEED / ZCIO_FUZZ_PATH
// replay one here too.

import { envOptions, fuzz, parseDuration } from './model/runner.js'
import { fixedTest } from './support.js'

const options = envOptions(process.env)
const timeMs = options.timeMs ?? parseDuration('60s')

fixedTest('random sequences of API calls agree with the model', async (t) => {
  t.timeout(timeMs + 5 * 60_000)
  const result = await fuzz({
    ...options,
    timeMs,
    log: (line) => {
      console.log(line)
      t.log(line)
    },
  })
  const rate = result.commands / (result.elapsedMs / 1000)
  t.log(`${result.runs} runs, ${result.commands} commands in ${(result.elapsedMs / 1000).toFixed(1)} s (${rate.toFixed(0)}/s), seed ${result.seed}`)
  if (!result.ok) t.fail(result.report)
  else t.pass()
})
