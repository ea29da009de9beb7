// `npm run bench` / `npm run bench:smoke`: starts one private control plane,
// runs every benchmark against it, writes the JSON result and (full runs)
// regenerates bench/RESULTS.md. Flags: --smoke (tiny sizes, results in a temp
// dir), --only=a,b (a subset), --out=<file>.
import { writeFileSync, mkdtempSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { tmpdir } from 'node:os'
import { performance } from 'node:perf_hooks'
import { ControlPlane } from '../test/cluster/control-plane.ts'
import { propagation } from './propagation.ts'
import { reads } from './reads.ts'
import { fanout } from './fanout.ts'
import { memory } from './memory.ts'
import { clusterCost } from './cluster-cost.ts'
import { ciTimes } from './ci-times.ts'
import { environment } from './environment.ts'
import { writeReport, type Results } from './report.ts'
import { SIZES } from './sizes.ts'
import { buildSidecar } from './sidecar-process.ts'

const args = process.argv.slice(2)
const smoke = args.includes('--smoke')
const only = args.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',')
const out = args.find((a) => a.startsWith('--out='))?.slice('--out='.length) ??
  (smoke ? join(mkdtempSync(join(tmpdir(), 'ksp-bench-')), 'results.json') : join(import.meta.dirname, 'results.json'))
const size = smoke ? SIZES.smoke : SIZES.full
const wanted = (name: string): boolean => only === undefined || only.includes(name)

const started = performance.now()
const log = (line: string): void => { process.stderr.write(`[bench ${((performance.now() - started) / 1000).toFixed(1)} s] ${line}\n`) }

const results: Record<string, unknown> = {
  kind: smoke ? 'smoke' : 'full',
  startedAt: new Date().toISOString(),
  environment: environment(),
  sizes: size
}
log('compiling the sidecar into bench/.dist')
buildSidecar()
const plane = await ControlPlane.start({ log })
log(`control plane up at ${plane.state.server}`)
try {
  // Cluster cost first, so the apiserver's CPU and memory start from a fresh process.
  const steps: Array<[string, () => Promise<unknown>]> = [
    ['clusterCost', () => clusterCost(plane, size.clusterCost, log)],
    ['propagation', () => propagation(plane, size.propagation, log)],
    ['fanout', () => fanout(plane, size.fanout, log)],
    ['memory', () => memory(plane, size.memory, log)],
    // last: the article's pattern fills the audit log with one entry per read
    ['reads', () => reads(plane, size.reads, log)],
    ['ciTimes', async () => ciTimes()]
  ]
  for (const [name, step] of steps) {
    if (!wanted(name)) continue
    log(`${name}: start`)
    const t = performance.now()
    results[name] = await step()
    log(`${name}: done in ${((performance.now() - t) / 1000).toFixed(1)} s`)
  }
} finally {
  await plane.stop()
}
results.durationSeconds = Math.round((performance.now() - started) / 100) / 10
writeFileSync(out, `${JSON.stringify(results, null, 1)}\n`)
log(`wrote ${out}`)
// A smoke run renders its report next to its results, so CI exercises the report too.
if (smoke || only === undefined) {
  const written = writeReport(results as unknown as Results, smoke ? dirname(out) : import.meta.dirname)
  log(`wrote ${written.join(', ')}`)
}
// Sockets the benchmarks opened to servers that are now gone must not keep us alive.
process.exit(0)
