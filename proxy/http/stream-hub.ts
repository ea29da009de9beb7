// The one subscription to the store behind every push: each change is
// serialized once and fanned out to the streaming clients (WebSocket, SSE)
// that selected its secret and to the long-polls waiting on it. It owns the
// client count, the heartbeat timer and the shutdown of every stream.
import { performance } from 'node:perf_hooks'
import type { FastifyBaseLogger } from 'fastify'
import type { SecretEntry, SecretStore } from '../store/secret-store.ts'
import type { HttpMetrics, StreamKind } from './http-metrics.ts'
import type { MessageType, SecretView } from './secret-view.ts'

/** One message, serialized at most once per wire format whatever the number of clients. */
export interface Frame {
  readonly type: MessageType
  readonly cursor: string
  /** the JSON text as a WebSocket text frame's payload */
  websocket: () => Buffer
  /** `id:`, `event:` and `data:` lines of a Server-Sent Event */
  sse: () => Buffer
}

export interface StreamClient {
  readonly kind: StreamKind
  /** whether this client selected the secret */
  wants: (id: string) => boolean
  /** `live` is false for the snapshot or replay written at connect, which the send-buffer bound does not apply to */
  send: (frame: Frame, live: boolean) => void
  heartbeat: () => void
  /** the server is stopping: WebSocket close 1001, SSE end */
  shutdown: () => void
}

export type WaitOutcome = 'changed' | 'timeout' | 'shutdown' | 'gone'

export interface StreamHub {
  frame: (type: MessageType, cursor: string, entry: SecretEntry) => Frame
  /** false when the client limit is reached or the server is stopping */
  add: (client: StreamClient) => boolean
  remove: (client: StreamClient) => void
  /**
   * Waits for a change of secret `id` after which `unchanged(entry)` is false,
   * for at most `ms`; settles early when the server stops or `signal` aborts.
   */
  wait: (id: string, unchanged: (entry: SecretEntry) => boolean, ms: number, signal: AbortSignal) => Promise<WaitOutcome>
  readonly closing: boolean
  /** closes every stream and releases every wait; new clients are refused */
  shutdown: () => void
}

export interface StreamHubOptions {
  store: SecretStore
  view: SecretView
  metrics: HttpMetrics
  log: FastifyBaseLogger
  maxClients: number
  pingIntervalMs: number
}

interface Waiter {
  unchanged: (entry: SecretEntry) => boolean
  settle: (outcome: WaitOutcome) => void
}

export function createStreamHub (options: StreamHubOptions): StreamHub {
  const { store, view, metrics, log } = options
  const clients = new Set<StreamClient>()
  const waiters = new Map<string, Set<Waiter>>()
  let heartbeat: NodeJS.Timeout | undefined
  let closing = false

  function frame (type: MessageType, cursor: string, entry: SecretEntry): Frame {
    let text: string | undefined
    let websocket: Buffer | undefined
    let sse: Buffer | undefined
    const json = (): string => (text ??= view.messageJson(type, cursor, entry))
    return {
      type,
      cursor,
      websocket: () => (websocket ??= Buffer.from(json())),
      // JSON.stringify never emits a raw newline, so the data fits one `data:` line.
      sse: () => (sse ??= Buffer.from(`id: ${cursor}\nevent: ${type}\ndata: ${json()}\n\n`))
    }
  }

  function onChange (change: { type: MessageType, cursor: string, entry: SecretEntry }): void {
    const started = performance.now()
    const message = frame(change.type, change.cursor, change.entry)
    let written = 0
    for (const client of [...clients]) {
      if (!client.wants(change.entry.id)) continue
      // One broken client must not keep the others from the change.
      try {
        client.send(message, true)
        written += 1
      } catch (err) {
        log.error({ err, kind: client.kind, secret: change.entry.id, type: change.type }, 'failed to push a change to a streaming client')
      }
    }
    const waiting = waiters.get(change.entry.id)
    if (waiting !== undefined) {
      for (const waiter of [...waiting]) {
        if (waiter.unchanged(change.entry)) continue
        waiter.settle('changed')
        written += 1
      }
    }
    if (written > 0) metrics.propagation((performance.now() - started) / 1000)
  }

  const unsubscribe = store.subscribe((change) => {
    // The store hands a listener's error back to the source's apply: a bug
    // here must not break the watch loop, so it stays here.
    try {
      onChange(change)
    } catch (err) {
      log.error({ err, secret: change.entry.id, type: change.type }, 'failed to push a change to streaming clients')
    }
  })

  function tick (): void {
    for (const client of [...clients]) client.heartbeat()
  }

  return {
    frame,
    get closing () { return closing },
    add (client) {
      if (closing || clients.size >= options.maxClients) return false
      clients.add(client)
      metrics.clients(client.kind, 1)
      if (heartbeat === undefined) {
        // Not unref'd: it runs only while clients exist, and stops with the last one.
        heartbeat = setInterval(tick, options.pingIntervalMs)
      }
      return true
    },
    remove (client) {
      if (!clients.delete(client)) return
      metrics.clients(client.kind, -1)
      if (clients.size === 0 && heartbeat !== undefined) {
        clearInterval(heartbeat)
        heartbeat = undefined
      }
    },
    wait (id, unchanged, ms, signal) {
      if (closing) return Promise.resolve('shutdown')
      if (signal.aborted) return Promise.resolve('gone')
      return new Promise((resolve) => {
        let set = waiters.get(id)
        if (set === undefined) waiters.set(id, set = new Set())
        const waiting = set
        const onAbort = (): void => { waiter.settle('gone') }
        const timer = setTimeout(() => { waiter.settle('timeout') }, ms)
        const waiter: Waiter = {
          unchanged,
          settle (outcome) {
            clearTimeout(timer)
            signal.removeEventListener('abort', onAbort)
            waiting.delete(waiter)
            if (waiting.size === 0 && waiters.get(id) === waiting) waiters.delete(id)
            resolve(outcome)
          }
        }
        waiting.add(waiter)
        signal.addEventListener('abort', onAbort, { once: true })
      })
    },
    shutdown () {
      if (closing) return
      closing = true
      unsubscribe()
      for (const client of [...clients]) {
        clients.delete(client)
        metrics.clients(client.kind, -1)
        client.shutdown()
      }
      if (heartbeat !== undefined) clearInterval(heartbeat)
      heartbeat = undefined
      for (const waiting of [...waiters.values()]) {
        for (const waiter of [...waiting]) waiter.settle('shutdown')
      }
    }
  }
}
