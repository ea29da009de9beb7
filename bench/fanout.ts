// Benchmark 3: one change pushed to 1, 100, 1000 WebSocket subscribers of one
// sidecar: from the API server's own watch event (a raw watch in this process)
// to each subscriber's arrival, and to the last one.
import { performance } from 'node:perf_hooks'
import { setTimeout as delay } from 'node:timers/promises'
import WebSocket from 'ws'
import type { ControlPlane } from '../test/cluster/control-plane.ts'
import { PROXY_HEADER } from '../test/sidecar/sidecar.ts'
import { startSidecar } from './sidecar-process.ts'
import { rawWatch } from './raw-watch.ts'
import { Sightings } from './observe.ts'
import { summarize, type Summary } from './stats.ts'

export interface FanoutSize {
  subscribers: number[]
  updates: number
}

export interface FanoutRun {
  subscribers: number
  updates: number
  /** per update: raw watch event → last subscriber, ms */
  lastMs: Summary
  /** per update: raw watch event → first subscriber, ms */
  firstMs: Summary
  /** every delivery: raw watch event → that subscriber, ms */
  everyMs: Summary
  /** per update: PATCH sent → last subscriber, ms */
  lastFromPatchMs: Summary
  /** seconds to open and receive the snapshot on every subscriber */
  connectSeconds: number
}

const SECRET = 'fanout'
const KEY = 'value'

/** A WebSocket subscriber that only timestamps: parsing is left out of the measurement. */
interface Subscriber {
  ws: WebSocket
  /** arrival time of each message, with its raw text */
  got: Array<{ at: number, text: string }>
}

async function subscribe (port: number, ns: string, onMessage: () => void): Promise<Subscriber> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/watch?secret=${ns}/${SECRET}`, { headers: PROXY_HEADER })
  const sub: Subscriber = { ws, got: [] }
  ws.on('message', (data) => {
    sub.got.push({ at: performance.now(), text: String(data) })
    onMessage()
  })
  ws.on('error', () => {})
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('unexpected-response', (_req, res) => reject(new Error(`WebSocket upgrade answered ${res.statusCode}`)))
    ws.once('error', reject)
  })
  return sub
}

export async function fanout (plane: ControlPlane, size: FanoutSize, log: (line: string) => void): Promise<FanoutRun[]> {
  const { namespace: ns } = await plane.appServiceAccount('bench-fanout', [SECRET], ['get', 'list', 'watch'])
  const created = await plane.createSecret(ns, SECRET, { [KEY]: 'f0' })
  const token = await plane.mintToken(ns, 'app')
  const most = Math.max(...size.subscribers)
  const sidecar = await startSidecar(plane, {
    namespace: ns,
    serviceAccount: 'app',
    token,
    args: [`--secret=${SECRET}`, '--log-level=warn', `--max-clients=${most + 10}`]
  })
  const sightings = new Sightings(['raw-watch'])
  const watch = await rawWatch(plane.as(token), ns, SECRET, created.metadata.resourceVersion as string, (data, at) => {
    if (data[KEY] !== undefined) sightings.saw('raw-watch', data[KEY], at)
  })
  const runs: FanoutRun[] = []
  let version = 0
  try {
    for (const count of size.subscribers) {
      const opening = performance.now()
      const subs: Subscriber[] = []
      let arrivals = 0
      let wake: (() => void) | undefined
      const onMessage = (): void => { arrivals += 1; wake?.() }
      // Open in batches: a thousand simultaneous handshakes measure the accept queue, not the push.
      for (let i = 0; i < count; i += 50) {
        subs.push(...await Promise.all(Array.from({ length: Math.min(50, count - i) }, () => subscribe(sidecar.port, ns, onMessage))))
      }
      const arrived = async (n: number, timeoutMs: number): Promise<void> => {
        const deadline = performance.now() + timeoutMs
        while (arrivals < n) {
          const left = deadline - performance.now()
          if (left <= 0) throw new Error(`fan-out to ${count}: ${arrivals} of ${n} messages arrived within ${timeoutMs} ms`)
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, left)
            wake = () => { clearTimeout(timer); resolve() }
          })
        }
      }
      await arrived(count, 30_000) // every snapshot
      const connectSeconds = (performance.now() - opening) / 1000
      const last: number[] = []
      const first: number[] = []
      const every: number[] = []
      const fromPatch: number[] = []
      for (let u = 1; u <= size.updates; u++) {
        await delay(50 + Math.random() * 100)
        version += 1
        const value = `f${version}`
        const needle = Buffer.from(value).toString('base64')
        const expected = arrivals + count
        const sent = performance.now()
        await plane.updateSecret(ns, SECRET, { [KEY]: value })
        await arrived(expected, 30_000)
        if (!await sightings.allSaw(value, 10_000)) throw new Error(`the raw watch did not see ${value}`)
        const event = sightings.at('raw-watch', value)!
        const times = subs.map((s) => s.got.find((m) => m.text.includes(`"${needle}"`))?.at ?? Number.NaN)
        if (times.some((t) => Number.isNaN(t))) throw new Error(`fan-out to ${count}: a subscriber did not get ${value}`)
        const latest = Math.max(...times)
        last.push(latest - event)
        first.push(Math.min(...times) - event)
        fromPatch.push(latest - sent)
        for (const t of times) every.push(t - event)
        for (const s of subs) s.got.length = 0
      }
      for (const s of subs) s.ws.terminate()
      // let the sidecar notice the closes before the next size
      await delay(200)
      runs.push({ subscribers: count, updates: size.updates, lastMs: summarize(last), firstMs: summarize(first), everyMs: summarize(every), lastFromPatchMs: summarize(fromPatch), connectSeconds })
      log(`fan-out to ${count}: last subscriber p50 ${summarize(last).p50.toFixed(2)} ms after the API event`)
    }
  } finally {
    watch.close()
    await sidecar.stop()
  }
  return runs
}
