#!/usr/bin/env node
// Wiring only: config → API client → store → watch source → apps → listen;
// signals and exit codes (0 after a graceful stop, 2 for bad configuration).
import closeWithGrace from 'close-with-grace'
import { parseConfig, helpText, ConfigError, type Config } from './config.ts'
import { createLogger } from './log.ts'
import { createSecretStore } from './store/secret-store.ts'
import { createMetrics } from './metrics.ts'
import { buildApp } from './http/app.ts'
import { buildHealthApp } from './http/health.ts'
import { listenOn, ListenError } from './listen.ts'
import { createApiClient } from './kube/client.ts'
import { createSecretSource } from './kube/secret-source.ts'
import { runCheck } from './kube/check.ts'
import { version } from './version.ts'

function fail (err: ConfigError): never {
  process.stderr.write(`kube-secret-proxy: ${err.message}\n`)
  process.exit(2)
}

async function main (): Promise<void> {
  let config: Config
  try {
    config = parseConfig(process.argv.slice(2), process.env)
  } catch (err) {
    if (err instanceof ConfigError) fail(err)
    throw err
  }
  if (config.command === 'help') {
    process.stdout.write(`${helpText(version)}\n`)
    return
  }
  if (config.command === 'version') {
    process.stdout.write(`${version}\n`)
    return
  }

  const log = createLogger(config.logLevel)
  const api = createApiClient({
    credentials: config.credentials,
    qps: config.apiQps,
    burst: config.apiBurst,
    log
  })

  if (config.command === 'check') {
    const code = await runCheck({ api, secrets: config.secrets, mode: config.mode, namespace: config.namespace, allow: config.allow, out: (line) => process.stdout.write(`${line}\n`) })
    api.close()
    process.exitCode = code
    return
  }

  const store = createSecretStore({
    secrets: config.secrets,
    keepPreviousMs: config.keepPreviousMs,
    allow: config.allow,
    cacheMaxSecrets: config.cacheMaxSecrets,
    cacheMaxBytes: config.cacheMaxBytes
  })
  const metrics = createMetrics({ store, version, cacheSize: () => store.dynamicSize() })
  const source = createSecretSource({
    api,
    store,
    secrets: config.secrets,
    mode: config.mode,
    pollIntervalMs: config.pollIntervalMs,
    staleAfterMs: config.staleAfterMs,
    recheckIntervalMs: config.recheckIntervalMs,
    watchTimeoutSeconds: config.watchTimeoutSeconds,
    silenceMs: config.watchSilenceMs,
    backoff: { initialMs: config.backoffInitialMs, maxMs: config.backoffMaxMs },
    log: log.child({ component: 'source' }),
    metrics: metrics.source
  })
  const app = await buildApp({
    store,
    defaultNamespace: config.namespace,
    logger: log.child({ component: 'http' }),
    ...(config.authToken === undefined ? {} : { authToken: config.authToken }),
    allowedHosts: [...config.allowedHosts],
    maxWaitMs: config.maxWaitMs,
    maxClients: config.maxClients,
    sendBufferBytes: config.sendBufferBytes,
    pingIntervalMs: config.pingIntervalMs,
    metrics: metrics.http
  })
  // Liveness asks "is the loop still trying?", never "is the API answering?":
  // a restart would throw away the cache exactly when the API is down.
  const liveWithinMs = config.backoffMaxMs + config.watchTimeoutSeconds * 1000 + config.watchSilenceMs
  const health = buildHealthApp({
    store,
    registry: metrics.registry,
    live: () => Date.now() - source.lastAttemptAt.getTime() < liveWithinMs
  })

  // Bind both listeners before talking to the API: nothing starts half-configured.
  const problems: string[] = []
  for (const [target, listen, flag] of [[app, config.listen, 'listen'], [health, config.metricsListen, 'metrics-listen']] as const) {
    try {
      await listenOn(target, listen, flag, flag === 'listen' ? config.listenGroup : undefined)
    } catch (err) {
      if (!(err instanceof ListenError)) throw err
      problems.push(err.message)
    }
  }
  if (problems.length > 0) {
    await Promise.allSettled([app.close(), health.close()])
    api.close()
    fail(new ConfigError(problems))
  }

  // Dynamic secrets: the app's reads ask the store, the store tells the source.
  store.onDemand({
    added: (entry) => source.add(entry),
    removed: (entry) => {
      source.remove(entry.id)
      metrics.cache.evicted(entry.namespace, entry.name)
    }
  })
  if (config.allow.length > 0) {
    log.warn({ allow: config.allow }, 'dynamic secrets are on: RBAC must grant namespace-wide get, list, watch, so the --allow patterns are the only guard of which secrets the app reads')
  }
  // Previous content must not outlive its window in memory.
  const expireTimer = config.keepPreviousMs > 0 ? setInterval(() => store.expirePrevious(), Math.min(config.keepPreviousMs, 1000)).unref() : undefined

  source.start()
  log.info({ version, secrets: config.secrets.map((s) => `${s.namespace}/${s.name}${s.optional ? '?optional' : ''}`), listen: config.listen, metricsListen: config.metricsListen, mode: config.mode }, 'kube-secret-proxy started')

  closeWithGrace({ delay: 10_000, logger: log }, async ({ signal, err }) => {
    if (err !== undefined) log.error({ err }, 'stopping after an unexpected error')
    else log.info({ signal }, 'stopping: closing streams and finishing in-flight requests')
    // app.close() stops accepting, closes WebSockets (1001) and SSE streams,
    // releases long-polls and waits for in-flight requests.
    await app.close()
    clearInterval(expireTimer)
    await source.stop()
    await health.close()
    metrics.close()
    api.close()
    log.info('stopped')
  })
}

await main()
