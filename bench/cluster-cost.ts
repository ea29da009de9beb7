// Benchmark 5: what sidecars cost the cluster, seen from the API server: its
// audit log (requests and open watches per sidecar, API requests per local
// read), its /metrics (registered watches), /proc (each sidecar's TCP
// connections to it, its own CPU and memory) with 1, 10, 50 sidecars on one
// control plane.
import { performance } from 'node:perf_hooks'
import { setTimeout as delay } from 'node:timers/promises'
import type { ControlPlane } from '../test/cluster/control-plane.ts'
import { PROXY_HEADER, httpGet, type Sidecar } from '../test/sidecar/sidecar.ts'
import { startSidecar } from './sidecar-process.ts'
import { auditOffset, trafficSince, trafficOf, type UserTraffic } from './audit.ts'
import { cpuSeconds, rssBytes, tcpConnectionsTo } from './proc.ts'
import { summarize, type Summary } from './stats.ts'

export interface ClusterCostSize {
  sidecars: number[]
  windowSeconds: number
  localReads: number
}

export interface ApiServerLoad {
  sidecars: number
  /** apiserver CPU over the steady window, % of one core */
  apiserverCpuPercent: number
  apiserverRssMiB: number
  etcdCpuPercent: number
  /** kube-apiserver's apiserver_longrunning_requests for WATCH on secrets */
  apiserverSecretWatches: number
  /** per sidecar, from its start until the window began */
  startupRequests: Summary
  startupByVerb: Record<string, number>
  /** per sidecar, during the steady window, per minute */
  steadyRequestsPerMinute: Summary
  openWatches: Summary
  tcpConnections: Summary
}

export interface ClusterCostResult {
  windowSeconds: number
  baseline: ApiServerLoad
  runs: ApiServerLoad[]
  localReads: { reads: number, apiRequests: number, perRead: number }
}

const SECRET = 'db'

interface Running {
  sidecar: Sidecar
  user: string
  startOffset: number
  /** its requests from start to ready */
  startup: UserTraffic
}

export async function clusterCost (plane: ControlPlane, size: ClusterCostSize, log: (line: string) => void): Promise<ClusterCostResult> {
  const [etcdPid, apiserverPid] = plane.pids as [number, number]
  const running: Running[] = []
  const measureWindow = async (): Promise<ApiServerLoad> => {
    await delay(2000) // let startups settle
    // Each sidecar has its own ServiceAccount, so one pass from the earliest start attributes every request.
    const since = Math.min(auditOffset(plane), ...running.map((r) => r.startOffset))
    const offset = auditOffset(plane)
    const [api0, etcd0, t0] = [cpuSeconds(apiserverPid), cpuSeconds(etcdPid), performance.now()]
    await delay(size.windowSeconds * 1000)
    const [api1, etcd1, t1] = [cpuSeconds(apiserverPid), cpuSeconds(etcdPid), performance.now()]
    const seconds = (t1 - t0) / 1000
    const steady = await trafficSince(plane, offset)
    // a watch is logged when it starts (ResponseStarted): count from each sidecar's start
    const whole = await trafficSince(plane, since)
    const startups: UserTraffic[] = running.map((r) => r.startup)
    const startupByVerb: Record<string, number> = {}
    for (const s of startups) for (const [verb, n] of Object.entries(s.byVerb)) startupByVerb[verb] = (startupByVerb[verb] ?? 0) + n / startups.length
    return {
      sidecars: running.length,
      apiserverCpuPercent: (api1 - api0) / seconds * 100,
      apiserverRssMiB: rssBytes(apiserverPid) / 2 ** 20,
      etcdCpuPercent: (etcd1 - etcd0) / seconds * 100,
      apiserverSecretWatches: await secretWatches(plane),
      startupRequests: summarize(startups.map((s) => s.requests)),
      startupByVerb,
      steadyRequestsPerMinute: summarize(running.map((r) => trafficOf(steady, r.user).requests / seconds * 60)),
      openWatches: summarize(running.map((r) => trafficOf(whole, r.user).openWatches)),
      tcpConnections: summarize(running.map((r) => tcpConnectionsTo(r.sidecar.child.pid!, plane.state.apiserverPort)))
    }
  }

  try {
    log('cluster cost: baseline, no sidecar')
    const baseline = await measureWindow()
    const runs: ApiServerLoad[] = []
    let localReads: ClusterCostResult['localReads'] | undefined
    for (const target of size.sidecars) {
      while (running.length < target) {
        // a few at a time: each Node start takes most of a core for a moment
        const batch = Math.min(5, target - running.length)
        const started = await Promise.all(Array.from({ length: batch }, async () => {
          const { namespace: ns, user } = await plane.appServiceAccount('bench-cost', [SECRET], ['get', 'list', 'watch'])
          await plane.createSecret(ns, SECRET, { password: 'hunter2' })
          const token = await plane.mintToken(ns, 'app')
          const startOffset = auditOffset(plane)
          const sidecar = await startSidecar(plane, { namespace: ns, serviceAccount: 'app', token, args: [`--secret=${SECRET}`, '--log-level=warn'] })
          return { sidecar, user, startOffset }
        }))
        const traffic = await trafficSince(plane, Math.min(...started.map((r) => r.startOffset)))
        running.push(...started.map((r) => ({ ...r, startup: trafficOf(traffic, r.user) })))
      }
      if (localReads === undefined) {
        const first = running[0]!
        const offset = auditOffset(plane)
        const path = `/v1/secrets/${SECRET}/keys/password`
        for (let i = 0; i < size.localReads; i++) {
          const res = await httpGet(first.sidecar.port, path, PROXY_HEADER)
          if (res.status !== 200) throw new Error(`a local read answered ${res.status}`)
        }
        const apiRequests = trafficOf(await trafficSince(plane, offset), first.user).requests
        localReads = { reads: size.localReads, apiRequests, perRead: apiRequests / size.localReads }
      }
      log(`cluster cost: ${running.length} sidecars`)
      runs.push(await measureWindow())
    }
    return { windowSeconds: size.windowSeconds, baseline, runs, localReads: localReads! }
  } finally {
    await Promise.all(running.map((r) => r.sidecar.stop()))
  }
}

async function secretWatches (plane: ControlPlane): Promise<number> {
  const res = await plane.admin.send('GET', '/metrics')
  if (res.status !== 200) return Number.NaN
  let total = 0
  for (const line of String(res.body).split('\n')) {
    if (!line.startsWith('apiserver_longrunning_requests{')) continue
    if (!line.includes('resource="secrets"') || !line.includes('verb="WATCH"')) continue
    total += Number(line.slice(line.lastIndexOf(' ') + 1))
  }
  return total
}
