// Benchmark 2: what one read costs. autocannon against the sidecar's
// GET …/keys/{key}, against a bare node:http server answering the same bytes
// (the limit for Node), and against the article's pattern (client-node reads
// the secret from the API server on every request). Then the sidecar again
// under --cpu-prof, to show where its time goes.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import autocannon from 'autocannon'
import type { ControlPlane } from '../test/cluster/control-plane.ts'
import { PROXY_HEADER } from '../test/sidecar/sidecar.ts'
import { startSidecar } from './sidecar-process.ts'
import { startServer } from './child.ts'
import { auditOffset, trafficSince, trafficOf } from './audit.ts'
import { summarizeProfile, type ProfileSummary } from './cpu-profile.ts'
import { ratio } from './stats.ts'

export interface ReadsSize {
  seconds: number
  warmupSeconds: number
  connections: number
  profileSeconds: number
}

export interface LoadResult {
  requestsPerSecond: number
  latencyMs: { p50: number, p97_5: number, p99: number, mean: number }
  requests: number
  errors: number
  non2xx: number
}

export interface ReadsResult {
  connections: number
  seconds: number
  bodyBytes: number
  targets: { sidecar: LoadResult, bare: LoadResult, article: LoadResult }
  ratios: { sidecarToBare: number, sidecarToArticle: number, bareToArticle: number }
  /** API requests the ServiceAccount sent per read, from the audit log */
  apiRequestsPerRead: { sidecar: number, article: number }
  profile: ProfileSummary | undefined
}

const SECRET = 'reads'
const KEY = 'password'

export async function load (url: string, seconds: number, connections: number): Promise<LoadResult> {
  const result = await autocannon({ url, connections, duration: seconds, headers: PROXY_HEADER })
  return {
    requestsPerSecond: result.requests.average,
    latencyMs: { p50: result.latency.p50, p97_5: result.latency.p97_5, p99: result.latency.p99, mean: result.latency.mean },
    requests: result.requests.total,
    errors: result.errors,
    non2xx: result.non2xx
  }
}

/** warm-up, then the measured load; `apiRequests`: what `user` sent the API server meanwhile */
async function measure (url: string, size: ReadsSize, plane: ControlPlane, user: string): Promise<LoadResult & { apiRequests: number }> {
  if (size.warmupSeconds > 0) await load(url, size.warmupSeconds, size.connections)
  const before = auditOffset(plane)
  const result = await load(url, size.seconds, size.connections)
  return { ...result, apiRequests: trafficOf(await trafficSince(plane, before), user).requests }
}

export async function reads (plane: ControlPlane, size: ReadsSize, log: (line: string) => void): Promise<ReadsResult> {
  const { namespace: ns, user } = await plane.appServiceAccount('bench-reads', [SECRET], ['get', 'list', 'watch'])
  await plane.createSecret(ns, SECRET, { [KEY]: 'correct-horse-battery-staple-123' })
  const token = await plane.mintToken(ns, 'app')
  const path = `/v1/namespaces/${ns}/secrets/${SECRET}/keys/${KEY}`

  const sidecar = await startSidecar(plane, { namespace: ns, serviceAccount: 'app', token, args: [`--secret=${SECRET}`, '--log-level=warn'] })
  let sidecarResult: LoadResult
  let sidecarApi: number
  let captured: { headers: Record<string, string>, body: string }
  try {
    const answer = await sidecar.get(path)
    if (answer.status !== 200) throw new Error(`the sidecar answered ${answer.status}`)
    const keep = ['content-type', 'etag', 'cache-control']
    captured = {
      headers: Object.fromEntries(keep.filter((h) => answer.headers[h] !== undefined).map((h) => [h, String(answer.headers[h])])),
      body: answer.body.toString('base64')
    }
    log('reads: sidecar')
    const { apiRequests, ...result } = await measure(`http://127.0.0.1:${sidecar.port}${path}`, size, plane, user)
    sidecarResult = result
    sidecarApi = apiRequests
  } finally {
    await sidecar.stop()
  }

  log('reads: bare node:http')
  const bare = await startServer('bare-server.ts', captured)
  let bareResult: LoadResult
  try {
    const { apiRequests: _none, ...result } = await measure(`http://127.0.0.1:${bare.port}/`, size, plane, user)
    bareResult = result
  } finally {
    await bare.stop()
  }

  log('reads: the article\'s pattern (client-node per read)')
  const article = await startServer('article-server.ts', { server: plane.state.server, caFile: plane.state.caFile, token, namespace: ns, name: SECRET, key: KEY })
  let articleResult: LoadResult
  let articleApi: number
  try {
    const { apiRequests, ...result } = await measure(`http://127.0.0.1:${article.port}/`, size, plane, user)
    articleResult = result
    articleApi = apiRequests
  } finally {
    await article.stop()
  }

  log('reads: the sidecar under --cpu-prof')
  const profile = await profileSidecar(plane, ns, token, path, size)

  const served = (r: LoadResult): number => Math.max(1, r.requests)
  return {
    connections: size.connections,
    seconds: size.seconds,
    bodyBytes: Buffer.from(captured.body, 'base64').length,
    targets: { sidecar: sidecarResult, bare: bareResult, article: articleResult },
    ratios: {
      sidecarToBare: ratio(sidecarResult.requestsPerSecond, bareResult.requestsPerSecond),
      sidecarToArticle: ratio(sidecarResult.requestsPerSecond, articleResult.requestsPerSecond),
      bareToArticle: ratio(bareResult.requestsPerSecond, articleResult.requestsPerSecond)
    },
    apiRequestsPerRead: {
      sidecar: sidecarApi / served(sidecarResult),
      article: articleApi / served(articleResult)
    },
    profile
  }
}

async function profileSidecar (plane: ControlPlane, ns: string, token: string, path: string, size: ReadsSize): Promise<ProfileSummary | undefined> {
  const dir = mkdtempSync(join(tmpdir(), 'ksp-bench-prof-'))
  try {
    const sidecar = await startSidecar(plane, {
      namespace: ns,
      serviceAccount: 'app',
      token,
      args: [`--secret=${SECRET}`, '--log-level=warn'],
      env: { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${dir}` }
    })
    let window: { fromUs: number, toUs: number }
    try {
      const fromUs = Number(process.hrtime.bigint() / 1000n)
      await load(`http://127.0.0.1:${sidecar.port}${path}`, size.profileSeconds, size.connections)
      window = { fromUs, toUs: Number(process.hrtime.bigint() / 1000n) }
    } finally {
      await sidecar.stop()
    }
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))
    return file === undefined ? undefined : summarizeProfile(JSON.parse(readFileSync(join(dir, file), 'utf8')), window)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
