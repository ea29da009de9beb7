// Benchmark 4: the sidecar's resident memory (VmRSS) idle and under read load
// with 1, 100, 1000 secrets of 1 KiB and 64 KiB, and with WebSocket clients.
import { randomBytes } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as delay } from 'node:timers/promises'
import autocannon from 'autocannon'
import WebSocket from 'ws'
import type { ControlPlane } from '../test/cluster/control-plane.ts'
import { PROXY_HEADER } from '../test/sidecar/sidecar.ts'
import { startSidecar, COMPILED_MAIN, SOURCE_MAIN } from './sidecar-process.ts'
import { sampleRss } from './proc.ts'
import { summarize } from './stats.ts'

export interface MemorySize {
  secretCounts: number[]
  secretBytes: number[]
  /** WebSocket clients, each subscribed to every secret, with 100 (smoke: the second count) secrets of the smallest size */
  clients: number[]
  loadSeconds: number
  idleSeconds: number
}

export interface ImportCost {
  module: string
  rssMiB: number
  overNodeMiB: number
}

export interface MemoryRun {
  secrets: number
  secretBytes: number
  clients: number
  /** 'compiled' (dist/, as in a pod) or 'source' (proxy/main.ts by type stripping, as the tests run it) */
  entry: 'compiled' | 'source'
  /** sidecar start → /readyz 200 */
  readySeconds: number
  idleRssMiB: number
  loadRssMiB: { p50: number, max: number }
  loadRequestsPerSecond: number
}

const KEY = 'blob'
const MiB = 2 ** 20

async function createMany (plane: ControlPlane, ns: string, names: string[], bytes: number): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < names.length) {
      const name = names[next++]!
      // base64 of random bytes: the value is printable and exactly `bytes` long
      await plane.createSecret(ns, name, { [KEY]: randomBytes(Math.ceil(bytes * 3 / 4)).toString('base64').slice(0, bytes) })
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker))
}

async function openClients (port: number, count: number, secrets: number): Promise<WebSocket[]> {
  const sockets: WebSocket[] = []
  for (let i = 0; i < count; i += 50) {
    sockets.push(...await Promise.all(Array.from({ length: Math.min(50, count - i) }, () => new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/watch`, { headers: PROXY_HEADER })
      let got = 0
      ws.on('error', reject)
      // resolved once its snapshot (one message per secret) has arrived
      ws.on('message', () => { if (++got === secrets) resolve(ws) })
    }))))
  }
  return sockets
}

/** VmRSS of a fresh Node that imported `module` (nothing: '') and then idled 0.5 s */
function importRss (module: string): number {
  const code = `${module === '' ? '' : `await import(${JSON.stringify(module)});`} await new Promise((r) => setTimeout(r, 500)); process.stdout.write(String(process.memoryUsage.rss()))`
  return Number(execFileSync(process.execPath, ['--input-type=module', '-e', code], { cwd: join(import.meta.dirname, '..'), encoding: 'utf8' }))
}

export const IMPORTED = ['@kubernetes/client-node', 'fastify', '@fastify/websocket', 'pino', 'prom-client', 'typebox', 'lru-cache', 'close-with-grace']

export function importCosts (): ImportCost[] {
  const node = importRss('')
  return [{ module: '(empty Node)', rssMiB: node / MiB, overNodeMiB: 0 },
    ...IMPORTED.map((module) => {
      const rss = importRss(module)
      return { module, rssMiB: rss / MiB, overNodeMiB: (rss - node) / MiB }
    })]
}

export async function memory (plane: ControlPlane, size: MemorySize, log: (line: string) => void): Promise<{ runs: MemoryRun[], importCost: ImportCost[] }> {
  const runs: MemoryRun[] = []
  const clientSecrets = size.secretCounts[1] ?? size.secretCounts[0]!
  const smallest = Math.min(...size.secretBytes)
  for (const bytes of size.secretBytes) {
    for (const count of size.secretCounts) {
      const names = Array.from({ length: count }, (_, i) => `s-${i}`)
      const { namespace: ns } = await plane.appServiceAccount(`bench-mem-${count}-${bytes}`, names, ['get', 'list', 'watch'])
      await createMany(plane, ns, names, bytes)
      const token = await plane.mintToken(ns, 'app')
      const clientRuns = bytes === smallest && count === clientSecrets ? [0, ...size.clients] : [0]
      const entries: Array<[number, 'compiled' | 'source']> = clientRuns.map((c) => [c, 'compiled'])
      if (count === size.secretCounts[0] && bytes === smallest) entries.push([0, 'source'])
      for (const [clients, entry] of entries) {
        runs.push(await measureOne(plane, ns, token, names, bytes, clients, entry, size))
        const r = runs.at(-1)!
        log(`memory: ${count} × ${bytes} B, ${clients} clients, ${entry}: idle ${r.idleRssMiB.toFixed(1)} MiB, load max ${r.loadRssMiB.max.toFixed(1)} MiB, ready in ${r.readySeconds.toFixed(1)} s`)
      }
    }
  }
  return { runs, importCost: importCosts() }
}

async function measureOne (plane: ControlPlane, ns: string, token: string, names: string[], bytes: number, clients: number, entry: 'compiled' | 'source', size: MemorySize): Promise<MemoryRun> {
  const started = performance.now()
  const sidecar = await startSidecar(plane, {
    namespace: ns,
    serviceAccount: 'app',
    token,
    // --api-qps: the default 5 requests/s would take minutes to list 1000 secrets (see RESULTS.md)
    args: [...names.map((n) => `--secret=${n}`), '--log-level=warn', '--api-qps=500', '--api-burst=1000', `--max-clients=${clients + 10}`],
    waitReady: false
  }, entry === 'compiled' ? COMPILED_MAIN : SOURCE_MAIN)
  const sockets: WebSocket[] = []
  try {
    await sidecar.waitReady(180_000)
    const readySeconds = (performance.now() - started) / 1000
    const pid = sidecar.child.pid!
    sockets.push(...await openClients(sidecar.port, clients, names.length))
    await delay(size.idleSeconds * 1000)
    const idle = sampleRss(pid, 100)
    await delay(1000)
    const idleRss = summarize(idle.stop()).p50

    const loaded = sampleRss(pid, 100)
    const result = await autocannon({
      url: `http://127.0.0.1:${sidecar.port}`,
      connections: 10,
      duration: size.loadSeconds,
      headers: PROXY_HEADER,
      requests: [{
        method: 'GET',
        setupRequest: (req) => ({ ...req, path: `/v1/namespaces/${ns}/secrets/${names[Math.floor(Math.random() * names.length)]!}/keys/${KEY}` })
      }]
    })
    const load = summarize(loaded.stop())
    if (result.non2xx > 0 || result.errors > 0) throw new Error(`memory load: ${result.non2xx} non-2xx answers and ${result.errors} errors`)
    return {
      secrets: names.length,
      secretBytes: bytes,
      clients,
      entry,
      readySeconds,
      idleRssMiB: idleRss / MiB,
      loadRssMiB: { p50: load.p50 / MiB, max: load.max / MiB },
      loadRequestsPerSecond: result.requests.average
    }
  } finally {
    for (const ws of sockets) ws.terminate()
    await sidecar.stop()
  }
}
