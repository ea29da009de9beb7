// The Prometheus registry and every metric that observes the source, the
// store and HTTP. Label values are namespaces, secret names, routes, verbs
// and codes: never a secret value.
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client'
import type { SecretStore } from './store/secret-store.ts'

const PREFIX = 'kube_secret_proxy_'

export interface Metrics {
  readonly registry: Registry
  /** what the HTTP layer reports (HttpMetrics in http/app.ts) */
  readonly http: {
    request: (route: string, code: number, seconds: number) => void
    clients: (kind: 'websocket' | 'sse', delta: number) => void
    messageSent: (kind: 'websocket' | 'sse', type: string) => void
    slowClientClosed: (kind: 'websocket' | 'sse') => void
    propagation: (seconds: number) => void
  }
  /** what the watch source reports (SourceMetrics in kube/secret-source.ts) */
  readonly source: {
    apiRequest: (verb: string, code: number | 'error') => void
    watchRestart: (reason: string) => void
  }
  /** what the dynamic-secret cache reports */
  readonly cache: {
    evicted: (namespace: string, name: string) => void
  }
  /** stops listening to the store */
  close: () => void
}

export function createMetrics (options: { store: SecretStore, version: string, cacheSize?: () => { entries: number, bytes: number } }): Metrics {
  const { store } = options
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: PREFIX })
  // prom-client names three gauges *_total, which Prometheus reserves for
  // counters; nodejs_active_{handles,requests,resources} carry the same counts by type.
  for (const kind of ['handles', 'requests', 'resources']) registry.removeSingleMetric(`${PREFIX}nodejs_active_${kind}_total`)
  const secretLabels = ['namespace', 'secret'] as const

  new Gauge({
    name: `${PREFIX}build_info`,
    help: 'Always 1; labels carry the sidecar and Node.js versions.',
    labelNames: ['version', 'node_version'],
    registers: [registry],
    collect () { this.set({ version: options.version, node_version: process.version }, 1) }
  })

  // Per-secret gauges are read from the store at scrape time, so a secret that
  // leaves the store leaves /metrics with it.
  const perSecret = (name: string, help: string, value: (e: ReturnType<SecretStore['entries']>[number]) => number | undefined): Gauge => new Gauge({
    name: `${PREFIX}${name}`,
    help,
    labelNames: secretLabels,
    registers: [registry],
    collect () {
      this.reset()
      for (const entry of store.entries()) {
        const v = value(entry)
        if (v !== undefined) this.set({ namespace: entry.namespace, secret: entry.name }, v)
      }
    }
  })
  perSecret('secret_synced', '1 when the secret is loaded and confirmed fresh, else 0.', (e) => e.state === 'synced' ? 1 : 0)
  perSecret('secret_stale', '1 while the secret is served from memory without a recent successful contact with the API server.', (e) => e.state === 'stale' ? 1 : 0)
  perSecret('secret_forbidden', '1 while RBAC denies the sidecar this secret (its value has been dropped).', (e) => e.state === 'forbidden' ? 1 : 0)
  perSecret('secret_last_update_timestamp_seconds', 'When the secret\'s content last changed, in Unix seconds.', (e) => e.updatedAt === undefined ? undefined : e.updatedAt.getTime() / 1000)
  perSecret('secret_last_sync_timestamp_seconds', 'When the secret was last confirmed fresh by an event, bookmark, list or poll, in Unix seconds.', (e) => e.syncedAt === undefined ? undefined : e.syncedAt.getTime() / 1000)

  const changes = new Counter({ name: `${PREFIX}secret_changes_total`, help: 'Content changes of the secret seen by the sidecar.', labelNames: secretLabels, registers: [registry] })
  const unsubscribe = store.subscribe((change) => {
    if (change.type === 'MODIFIED') changes.inc({ namespace: change.entry.namespace, secret: change.entry.name })
  })

  const apiRequests = new Counter({ name: `${PREFIX}api_requests_total`, help: 'Requests to the Kubernetes API server, by verb and HTTP code (error: no answer).', labelNames: ['verb', 'code'], registers: [registry] })
  const watchRestarts = new Counter({ name: `${PREFIX}watch_restarts_total`, help: 'Watches restarted, by reason (timeout, disconnect, expired, silent, error, forbidden).', labelNames: ['reason'], registers: [registry] })
  const httpRequests = new Counter({ name: `${PREFIX}http_requests_total`, help: 'Requests to the secrets API, by route and status code.', labelNames: ['route', 'code'], registers: [registry] })
  const httpDuration = new Histogram({
    name: `${PREFIX}http_request_duration_seconds`,
    help: 'Time to answer a request to the secrets API (long-polls included), by route and status code.',
    labelNames: ['route', 'code'],
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60],
    registers: [registry]
  })
  const clients = new Gauge({ name: `${PREFIX}stream_clients`, help: 'Connected streaming clients, by kind (websocket, sse).', labelNames: ['kind'], registers: [registry] })
  clients.set({ kind: 'websocket' }, 0)
  clients.set({ kind: 'sse' }, 0)
  const messages = new Counter({ name: `${PREFIX}stream_messages_sent_total`, help: 'Messages sent to streaming clients, by kind and message type.', labelNames: ['kind', 'type'], registers: [registry] })
  const slowCloses = new Counter({ name: `${PREFIX}stream_slow_client_closes_total`, help: 'Streaming clients closed because their send buffer overflowed.', labelNames: ['kind'], registers: [registry] })
  const propagation = new Histogram({
    name: `${PREFIX}update_propagation_seconds`,
    help: 'From a change reaching the store to the last subscriber having it written.',
    buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    registers: [registry]
  })
  const evictions = new Counter({ name: `${PREFIX}cache_evictions_total`, help: 'Dynamic secrets evicted from memory to stay within --cache-max-secrets/--cache-max-bytes.', registers: [registry] })
  new Gauge({
    name: `${PREFIX}cache_entries`,
    help: 'Dynamic secrets held in memory.',
    registers: [registry],
    collect () { this.set(options.cacheSize?.().entries ?? 0) }
  })
  new Gauge({
    name: `${PREFIX}cache_bytes`,
    help: 'Bytes of dynamic secret data held in memory.',
    registers: [registry],
    collect () { this.set(options.cacheSize?.().bytes ?? 0) }
  })

  return {
    registry,
    http: {
      request: (route, code, seconds) => {
        httpRequests.inc({ route, code })
        httpDuration.observe({ route, code }, seconds)
      },
      clients: (kind, delta) => clients.inc({ kind }, delta),
      messageSent: (kind, type) => messages.inc({ kind, type }),
      slowClientClosed: (kind) => slowCloses.inc({ kind }),
      propagation: (seconds) => propagation.observe(seconds)
    },
    source: {
      apiRequest: (verb, code) => apiRequests.inc({ verb, code: String(code) }),
      watchRestart: (reason) => watchRestarts.inc({ reason })
    },
    cache: {
      evicted: (namespace, name) => {
        evictions.inc()
        changes.remove({ namespace, secret: name })
      }
    },
    close: unsubscribe
  }
}
