// Fixtures for the kube/ tests: a ServiceAccount with a Role on named
// secrets, and a source running as in a pod (its ServiceAccount directory and
// KUBERNETES_SERVICE_HOST/PORT), with its log lines and metrics captured.
import type { Cluster, PodServiceAccount } from '../cluster/cluster.ts'
import { waitFor } from '../cluster/helpers.ts'
import { createApiClient, type ApiClient, type ApiClientOptions, type KubeLog } from '../../proxy/kube/client.ts'
import { inClusterCredentials } from '../../proxy/kube/credentials.ts'
import { createSecretSource, type SecretSource, type SecretSourceOptions } from '../../proxy/kube/secret-source.ts'
import { createSecretStore, type SecretEntry, type SecretStore, type StoreChange } from '../../proxy/store/secret-store.ts'

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error'
  obj: object
  msg: string
}

export function captureLog (): KubeLog & { lines: LogLine[], text: () => string } {
  const lines: LogLine[] = []
  const at = (level: LogLine['level']) => (obj: object, msg: string): void => { lines.push({ level, obj, msg }) }
  return {
    lines,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    text: () => lines.map((line) => JSON.stringify(line)).join('\n')
  }
}

export interface App {
  namespace: string
  serviceAccount: string
  user: string
  token: string
  pod: PodServiceAccount
}

/** A namespace with ServiceAccount `app`, bound to a Role with `verbs` on the named secrets. */
export async function appWithRole (cluster: Cluster, prefix: string, resourceNames: string[], verbs: string[], options: { namespace?: string, token?: string } = {}): Promise<App> {
  const { namespace, user } = await cluster.appServiceAccount(prefix, resourceNames, verbs, options.namespace)
  const token = options.token ?? await cluster.mintToken(namespace, 'app', { expirationSeconds: 3600 })
  return { namespace, serviceAccount: 'app', user, token, pod: cluster.podServiceAccount(namespace, token) }
}

export interface Running {
  api: ApiClient
  store: SecretStore
  source: SecretSource
  log: ReturnType<typeof captureLog>
  changes: StoreChange[]
  requests: Array<[string, number | 'error']>
  restarts: string[]
  close: () => Promise<void>
}

type Tunables = Partial<Omit<SecretSourceOptions, 'api' | 'store' | 'secrets' | 'log' | 'metrics'>>

/** Starts a store and a source for `names` in the app's namespace, with short test intervals. */
export function startSource (app: App, names: string[], tunables: Tunables = {}, client: Partial<ApiClientOptions> & { tokenCheckIntervalMs?: number } = {}): Running {
  const log = captureLog()
  const { tokenCheckIntervalMs, ...clientOptions } = client
  const credentials = inClusterCredentials({
    serviceAccountDir: app.pod.dir,
    env: app.pod.env,
    ...(tokenCheckIntervalMs !== undefined ? { tokenCheckIntervalMs } : {})
  })
  const api = createApiClient({ credentials, qps: 100, burst: 200, log, ...clientOptions })
  const secrets = names.map((name) => ({ namespace: app.namespace, name, optional: false }))
  const store = createSecretStore({ secrets })
  const changes: StoreChange[] = []
  store.subscribe((change) => { changes.push(change) })
  const requests: Array<[string, number | 'error']> = []
  const restarts: string[] = []
  const source = createSecretSource({
    api,
    store,
    secrets,
    mode: 'watch',
    pollIntervalMs: 200,
    staleAfterMs: 30_000,
    recheckIntervalMs: 30_000,
    watchTimeoutSeconds: 60,
    silenceMs: 90_000,
    backoff: { initialMs: 100, maxMs: 1000 },
    log,
    metrics: {
      apiRequest: (verb, code) => { requests.push([verb, code]) },
      watchRestart: (reason) => { restarts.push(reason) }
    },
    ...tunables
  })
  source.start()
  return {
    api,
    store,
    source,
    log,
    changes,
    requests,
    restarts,
    async close () {
      await source.stop()
      await api.close()
    }
  }
}

/** Waits until the entry satisfies `ok`, and returns it. */
export async function entryWhen (store: SecretStore, id: string, what: string, ok: (entry: SecretEntry) => boolean, timeoutMs = 20_000): Promise<SecretEntry> {
  return waitFor(`${id} ${what}`, () => {
    const entry = store.get(id)
    return entry !== undefined && ok(entry) ? entry : undefined
  }, timeoutMs, 20)
}

export function valueOf (entry: SecretEntry, key: string): string | undefined {
  return entry.content?.data.get(key)?.toString('utf8')
}
