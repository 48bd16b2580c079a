// The commands of the model-based test, as fast-check `AsyncCommand`s, by
// family: rings and pools (rings-pools.ts), buffers (buffers.ts), I/O
// (io.ts, targets.ts), batches and argument errors (batch.ts), completions
// and pipes (completions.ts), lifecycle and timing (lifecycle.ts), workers
// (workers.ts), and the network: rings, groups and pairs (net-life.ts),
// sends (net-send.ts), receives (net-recv.ts), zcio.net conversations
// (net-sockets.ts). Each command acts, lets pending promise reactions run, then
// checks the whole world against the model (World.check).

import fc from 'fast-check'
import { badArgs, batch } from './batch.js'
import { acquire, fill, indexCall } from './buffers.js'
import { pipeCmd, ringCall } from './completions.js'
import { flood, Inspect, io } from './io.js'
import { lifecycle, timing } from './lifecycle.js'
import { hostileCmd } from './net-hostile.js'
import { netCrossCmd } from './net-cross.js'
import { netLifeCmd } from './net-life.js'
import { acceptCmd } from './net-accept.js'
import { groupCmd } from './net-group.js'
import { recvCmd } from './net-recv.js'
import { sendCmd } from './net-send.js'
import { netSocketsCmd } from './net-sockets.js'
import { newBigPool, newPool, newRing } from './rings-pools.js'
import { workerCmd } from './workers.js'

export { addPool, addRing } from './rings-pools.js'

export const commandArb = fc.oneof(
  { weight: 3, arbitrary: newRing },
  { weight: 4, arbitrary: newPool },
  { weight: 1, arbitrary: newBigPool },
  { weight: 12, arbitrary: acquire },
  { weight: 10, arbitrary: indexCall },
  { weight: 4, arbitrary: fill },
  { weight: 24, arbitrary: io },
  { weight: 6, arbitrary: batch },
  { weight: 3, arbitrary: badArgs },
  { weight: 6, arbitrary: ringCall },
  { weight: 6, arbitrary: pipeCmd },
  { weight: 6, arbitrary: lifecycle },
  { weight: 8, arbitrary: timing },
  { weight: 1, arbitrary: workerCmd },
  { weight: 1, arbitrary: flood },
  { weight: 1, arbitrary: fc.nat(1023).map((p) => new Inspect(p)) },
  { weight: 6, arbitrary: netLifeCmd },
  { weight: 9, arbitrary: sendCmd },
  { weight: 9, arbitrary: recvCmd },
  { weight: 2, arbitrary: hostileCmd },
  { weight: 3, arbitrary: netCrossCmd },
  { weight: 5, arbitrary: acceptCmd },
  { weight: 2, arbitrary: groupCmd },
  { weight: 3, arbitrary: netSocketsCmd },
)

export function commandsArb(maxCommands: number, replayPath?: string) {
  return fc.commands([commandArb], { maxCommands, size: 'max', replayPath })
}

