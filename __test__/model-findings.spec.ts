// Library bugs found by the model-based test (__test__/model), each reduced
// to the shrunk sequence the driver printed, kept as regression tests. A bug
// found and not yet fixed is added here as `test.failing` (with an entry in
// KNOWN_ISSUES in __test__/model/model.ts so the search goes on past it).

import { codeOf, fixedTest, zcio } from './support.js'

const { Ring } = zcio

// Seed 1612617467, path 19:5:6:5:6:5:6:3:5:3:3:3:3:5:7:7:
//   new Ring({ entries: 1, sqpoll: 10 }); ring.close(); ring.submit()
// Expected ERR_ZCIO_CLOSED, as for a ring with DEFER_TASKRUN (and as
// zcio::Ring::submit documents: Error::Closed after close). Got 0: without
// DEFER_TASKRUN, submit() returned early when nothing was queued, before it
// looked at the ring. That is every SQPOLL ring, and every ring on kernels
// before 6.1. Fixed in the core (submit checks the ring first).
fixedTest('submit() on a closed ring without DEFER_TASKRUN throws ERR_ZCIO_CLOSED', (t) => {
  const ring = new Ring({ entries: 1, sqpoll: 10 })
  t.false(ring.features.deferTaskrun)
  ring.close()
  t.is(codeOf(() => ring.submit()), 'ERR_ZCIO_CLOSED')
})
