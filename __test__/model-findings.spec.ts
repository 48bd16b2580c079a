// Library bugs found by the model-based test (__test__/model), each reduced
// to the shrunk sequence the driver printed. They are marked `failing` so the
// suite stays green until they are fixed: ava then reports the test as
// passing unexpectedly, and the `.failing` (and the matching entry of
// KNOWN_ISSUES in __test__/model/world.ts) can go.

import test from 'ava'
import { codeOf, probed, zcio } from './support.js'

const { Ring } = zcio
const failing = probed.ioUring && probed.fixedBuffers ? test.failing : test.skip

// Seed 1612617467, path 19:5:6:5:6:5:6:3:5:3:3:3:3:5:7:7:
//   new Ring({ entries: 1, sqpoll: 10 }); ring.close(); ring.submit()
// Expected ERR_ZCIO_CLOSED, as for a ring with DEFER_TASKRUN (and as
// zcio::Ring::submit documents: Error::Closed after close). Got 0: without
// DEFER_TASKRUN, submit() returns early when nothing is queued, before it
// looks at the ring. That is every SQPOLL ring, and every ring on kernels
// before 6.1.
failing('submit() on a closed ring without DEFER_TASKRUN throws ERR_ZCIO_CLOSED', (t) => {
  const ring = new Ring({ entries: 1, sqpoll: 10 })
  t.false(ring.features.deferTaskrun)
  ring.close()
  t.is(codeOf(() => ring.submit()), 'ERR_ZCIO_CLOSED')
})
