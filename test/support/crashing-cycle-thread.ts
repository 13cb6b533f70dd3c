// A cycle thread that crashes: the package's own (it runs its loop as usual), whose first
// incarnation throws an uncaught error 1.5 s after it loads, as a bug in a timer or an event
// handler of the thread would. test/integration/worker/cycle-thread.redis.test.ts runs it.
import { workerData } from 'node:worker_threads';
import type { CycleThreadData } from '../../lib/worker/cycle-thread-protocol';
import '../../lib/worker/cycle-thread-entry';

if ((workerData as CycleThreadData).incarnation === 0) {
  setTimeout(() => {
    throw new Error('injected crash of the cycle thread');
  }, 1500);
}
