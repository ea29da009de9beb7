// How big each benchmark runs: the full run (`npm run bench`, ~10–15 min on
// 2 cores) and the smoke run (`npm run bench:smoke`, CI: < 2 min).
import type { PropagationSize } from './propagation.ts'
import type { ReadsSize } from './reads.ts'
import type { FanoutSize } from './fanout.ts'
import type { MemorySize } from './memory.ts'
import type { ClusterCostSize } from './cluster-cost.ts'

export interface Sizes {
  propagation: PropagationSize
  reads: ReadsSize
  fanout: FanoutSize
  memory: MemorySize
  clusterCost: ClusterCostSize
}

export const SIZES: { full: Sizes, smoke: Sizes } = {
  full: {
    propagation: { updates: 200, pollMs: 1000 },
    reads: { seconds: 10, warmupSeconds: 2, connections: 10, profileSeconds: 5 },
    fanout: { subscribers: [1, 100, 1000], updates: 20 },
    memory: { secretCounts: [1, 100, 1000], secretBytes: [1024, 65536], clients: [100, 1000], loadSeconds: 5, idleSeconds: 3 },
    clusterCost: { sidecars: [1, 10, 50], windowSeconds: 30, localReads: 1000 }
  },
  smoke: {
    propagation: { updates: 5, pollMs: 1000 },
    reads: { seconds: 1, warmupSeconds: 0, connections: 4, profileSeconds: 1 },
    fanout: { subscribers: [1, 10], updates: 3 },
    memory: { secretCounts: [1, 5], secretBytes: [1024, 65536], clients: [10], loadSeconds: 1, idleSeconds: 0.5 },
    clusterCost: { sidecars: [1, 2], windowSeconds: 2, localReads: 50 }
  }
}
