// Summarizes a V8 .cpuprofile (node --cpu-prof): where the self time went, by
// function and by origin (the proxy's code, each dependency, Node's internals).

export interface ProfileSummary {
  totalMs: number
  /** share of sampled time by origin, % */
  byOrigin: Array<{ origin: string, percent: number }>
  /** the functions with the most self time */
  topFunctions: Array<{ fn: string, where: string, percent: number }>
}

interface CpuNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
  hitCount?: number
}

function originOf (url: string, fn: string): string {
  if (url === '') return fn === '(garbage collector)' ? '(gc)' : fn.startsWith('(') ? fn : '(native)'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg !== null) return pkg[1]!
  if (url.startsWith('node:')) return 'node internals'
  const proxy = /\/proxy\/(.+)$/.exec(url)
  if (proxy !== null) return `proxy/${proxy[1]!.split('/')[0]}`
  return url
}

/**
 * `window`: only samples taken between these CLOCK_MONOTONIC times in µs
 * (process.hrtime.bigint() / 1000n in any process: V8 stamps samples on the
 * same clock), to leave start-up and shutdown out.
 */
export function summarizeProfile (profile: { nodes: CpuNode[], samples: number[], timeDeltas: number[], startTime: number, endTime: number }, window?: { fromUs: number, toUs: number }, top = 12): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  let at = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!
    const delta = profile.timeDeltas[i] ?? 0
    at += delta
    if (window !== undefined && (at < window.fromUs || at > window.toUs)) continue
    self.set(id, (self.get(id) ?? 0) + delta)
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0)
  const origins = new Map<string, number>()
  const fns = new Map<string, { fn: string, where: string, us: number }>()
  for (const [id, us] of self) {
    const node = byId.get(id)
    if (node === undefined) continue
    const { functionName, url, lineNumber } = node.callFrame
    if (functionName === '(idle)' || functionName === '(program)') {
      origins.set(functionName, (origins.get(functionName) ?? 0) + us)
      continue
    }
    const origin = originOf(url, functionName)
    origins.set(origin, (origins.get(origin) ?? 0) + us)
    const where = url === '' ? origin : `${url.replace(/^.*\/(node_modules|proxy)\//, '$1/')}:${lineNumber + 1}`
    const key = `${functionName}@${where}`
    const known = fns.get(key) ?? { fn: functionName || '(anonymous)', where, us: 0 }
    known.us += us
    fns.set(key, known)
  }
  const pct = (us: number): number => Math.round(us / total * 1000) / 10
  return {
    totalMs: Math.round(total / 1000),
    byOrigin: [...origins].sort((a, b) => b[1] - a[1]).slice(0, top).map(([origin, us]) => ({ origin, percent: pct(us) })),
    topFunctions: [...fns.values()].sort((a, b) => b.us - a.us).slice(0, top).map((f) => ({ fn: f.fn, where: f.where, percent: pct(f.us) }))
  }
}
