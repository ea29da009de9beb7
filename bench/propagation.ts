// Benchmark 1: how long a rotation takes to reach an app, per way of
// listening, against the limit (a raw watch on the API server) and against
// the article's pattern (re-read through client-node every second).
import { performance } from 'node:perf_hooks'
import { setTimeout as delay } from 'node:timers/promises'
import type { ControlPlane } from '../test/cluster/control-plane.ts'
import { httpGet, PROXY_HEADER, decode } from '../test/sidecar/sidecar.ts'
import { startSidecar } from './sidecar-process.ts'
import { rawWatch } from './raw-watch.ts'
import { articleApi, articleRead } from './article-client.ts'
import { Sightings } from './observe.ts'
import { summarize, ratio, round, type Summary } from './stats.ts'

export interface PropagationSize {
  updates: number
  /** the article's re-read period */
  pollMs: number
}

export const OBSERVERS = ['raw-watch', 'websocket', 'sse', 'long-poll', 'poll-1s'] as const
export type Observer = typeof OBSERVERS[number]

export interface PropagationResult {
  updates: number
  pollMs: number
  /** per observer: latency from just before the PATCH was sent to first sight, ms */
  latencyMs: Record<Observer, Summary>
  /** the same, every sample in update order (NaN: not seen within the timeout) */
  samplesMs: Record<Observer, number[]>
  /** the PATCH round trip, ms */
  patchMs: Summary
  /** per update: observer − raw watch, ms */
  overRawMs: Record<Observer, Summary>
  /** p99(observer) − p99(raw), ms, and p50 / p99 ratios to raw */
  vsRaw: Record<Observer, { p50Ratio: number, p99Ratio: number, p99DiffMs: number }>
  missed: Record<Observer, number>
  quoted: { kubeletVolume: string, source: string }
}

const KEY = 'value'
const SECRET = 'rotating'

export async function propagation (plane: ControlPlane, size: PropagationSize, log: (line: string) => void): Promise<PropagationResult> {
  const { namespace: ns } = await plane.appServiceAccount('bench-prop', [SECRET], ['get', 'list', 'watch'])
  const created = await plane.createSecret(ns, SECRET, { [KEY]: 'v0' })
  const token = await plane.mintToken(ns, 'app')
  const sidecar = await startSidecar(plane, { namespace: ns, serviceAccount: 'app', token, args: [`--secret=${SECRET}`, '--log-level=warn'] })
  const sightings = new Sightings(OBSERVERS)
  const closers: Array<() => void> = []
  try {
    const watch = await rawWatch(plane.as(token), ns, SECRET, created.metadata.resourceVersion as string, (data, at) => {
      if (data[KEY] !== undefined) sightings.saw('raw-watch', data[KEY], at)
    })
    closers.push(watch.close)

    for (const [observer, stream] of [
      ['websocket', await sidecar.websocket(`?secret=${ns}/${SECRET}`)],
      ['sse', await sidecar.sse(`?secret=${ns}/${SECRET}`)]
    ] as const) {
      closers.push(() => stream.close())
      // Timestamp on arrival: MessageStream.push is what the socket handler calls.
      const push = stream.push.bind(stream)
      const sight = (message: any, at: number): void => {
        const value = message.data?.[KEY]
        if (typeof value === 'string') sightings.saw(observer, decode(value), at)
      }
      stream.push = (message: any) => {
        sight(message, performance.now())
        push(message)
      }
      // the snapshot can arrive in the same read as the handshake, before this patch
      for (const message of stream.messages) sight(message, performance.now())
    }

    let running = true
    closers.push(() => { running = false })
    const keyPath = `/v1/namespaces/${ns}/secrets/${SECRET}/keys/${KEY}`
    void (async () => {
      let etag = String((await sidecar.get(keyPath)).headers.etag)
      while (running) {
        const res = await httpGet(sidecar.port, `${keyPath}?wait=30s`, { ...PROXY_HEADER, 'if-none-match': etag })
        const at = performance.now()
        if (res.status === 200) {
          sightings.saw('long-poll', res.body.toString('utf8'), at)
          etag = String(res.headers.etag)
        } else if (res.status !== 304) throw new Error(`the long-poll answered ${res.status}`)
      }
    })().catch((err: unknown) => { if (running) log(`the long-poll stopped: ${String(err)}`) })

    const article = articleApi({ server: plane.state.server, caFile: plane.state.caFile, token, namespace: ns, name: SECRET })
    let reading = false
    const poller = setInterval(() => {
      if (reading) return
      reading = true
      articleRead(article, { server: plane.state.server, caFile: plane.state.caFile, token, namespace: ns, name: SECRET }, KEY)
        .then((value) => sightings.saw('poll-1s', value.toString('utf8')))
        .catch((err: unknown) => log(`poll-1s read failed: ${String(err)}`))
        .finally(() => { reading = false })
    }, size.pollMs)
    closers.push(() => clearInterval(poller))

    // The raw watch starts after v0's resourceVersion and the long-poll from v0's ETag: both start knowing v0.
    sightings.saw('raw-watch', 'v0')
    sightings.saw('long-poll', 'v0')
    if (!await sightings.allSaw('v0', 10_000)) throw new Error(`${sightings.missing('v0').join(', ')} did not see the initial value within 10 s`)

    const samples = Object.fromEntries(OBSERVERS.map((o) => [o, [] as number[]])) as unknown as Record<Observer, number[]>
    const patchMs: number[] = []
    for (let i = 1; i <= size.updates; i++) {
      // A uniform gap over one poll period puts each update at a random phase
      // of the poller's ticks, so its latency is not biased by our own rhythm.
      await delay(Math.random() * size.pollMs)
      const value = `v${i}`
      const sent = performance.now()
      await plane.updateSecret(ns, SECRET, { [KEY]: value })
      patchMs.push(performance.now() - sent)
      await sightings.allSaw(value, size.pollMs * 3 + 5000)
      for (const o of OBSERVERS) {
        const at = sightings.at(o, value)
        samples[o].push(at === undefined ? Number.NaN : at - sent)
      }
      if (i % 50 === 0) log(`propagation: ${i}/${size.updates} updates`)
    }
    running = false

    const seen = (xs: number[]): number[] => xs.filter((x) => Number.isFinite(x))
    const latencyMs = Object.fromEntries(OBSERVERS.map((o) => [o, summarize(seen(samples[o]))])) as Record<Observer, Summary>
    const raw = samples['raw-watch']
    return {
      updates: size.updates,
      pollMs: size.pollMs,
      latencyMs,
      samplesMs: Object.fromEntries(OBSERVERS.map((o) => [o, samples[o].map((x) => round(x))])) as Record<Observer, number[]>,
      patchMs: summarize(patchMs),
      overRawMs: Object.fromEntries(OBSERVERS.map((o) => [o, summarize(seen(samples[o].map((x, i) => x - raw[i]!)))])) as Record<Observer, Summary>,
      vsRaw: Object.fromEntries(OBSERVERS.map((o) => [o, {
        p50Ratio: ratio(latencyMs[o].p50, latencyMs['raw-watch'].p50),
        p99Ratio: ratio(latencyMs[o].p99, latencyMs['raw-watch'].p99),
        p99DiffMs: latencyMs[o].p99 - latencyMs['raw-watch'].p99
      }])) as PropagationResult['vsRaw'],
      missed: Object.fromEntries(OBSERVERS.map((o) => [o, samples[o].filter((x) => !Number.isFinite(x)).length])) as Record<Observer, number>,
      quoted: {
        kubeletVolume: 'a mounted Secret volume is refreshed on the kubelet sync (--sync-frequency 1 m, with jitter: 60–90 s) plus the kubelet\'s Secret cache propagation (its TTL, or watch delay): quoted, not measured',
        source: 'https://kubernetes.io/docs/concepts/configuration/secret/#mounted-secrets-are-updated-automatically'
      }
    }
  } finally {
    for (const close of closers.reverse()) close()
    await sidecar.stop()
  }
}
