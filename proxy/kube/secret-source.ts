// Keeps the store in step with the API server, one loop per secret: list then
// watch (or poll), resume, relist on 410, back off, recheck access. It owns
// every restart and never gives up; it writes the store only through apply().
import type { SecretContent, SecretStore } from '../store/secret-store.ts'
import { secretId } from '../store/secret-store.ts'
import { ApiStatusError, type ApiClient, type KubeLog, type WatchEvent } from './client.ts'
import { apiServerReady, forbiddenReason, missingVerbs, whoAmI, VERBS_FOR, type Subject, type Verb } from './access-review.ts'

export interface SourceMetrics {
  /** one API request finished: its verb (get, list, watch, create) and HTTP status, or 'error' when no answer came */
  apiRequest: (verb: string, code: number | 'error') => void
  /** a watch was restarted: timeout, silent, expired, error, forbidden, recheck */
  watchRestart: (reason: string) => void
}

export interface Timers {
  setTimeout: (fn: () => void, ms: number) => unknown
  clearTimeout: (handle: unknown) => void
}

export type SourceMode = 'auto' | 'watch' | 'poll'

export interface SecretSourceOptions {
  api: ApiClient
  store: Pick<SecretStore, 'apply'>
  secrets: ReadonlyArray<{ readonly namespace: string, readonly name: string }>
  mode: SourceMode
  /** poll mode: time between GETs of one secret */
  pollIntervalMs: number
  /** mark a secret stale after this long without a successful event, bookmark, list or poll */
  staleAfterMs: number
  /** how often to re-verify access (an open watch outlives a deleted RoleBinding) */
  recheckIntervalMs: number
  /** the server ends each watch after this long; it is resumed from the last resourceVersion */
  watchTimeoutSeconds: number
  /** restart a watch that delivered nothing (not even a ~60 s bookmark) for this long */
  silenceMs: number
  /** retry delays after errors: full jitter over initialMs * 2^n, capped at maxMs */
  backoff: { initialMs: number, maxMs: number }
  log: KubeLog
  metrics?: SourceMetrics
  clock?: () => Date
  timers?: Timers
  /** in [0, 1), for the backoff jitter */
  random?: () => number
}

export interface SecretSource {
  start: () => void
  /** starts fetching a secret that was not configured (a dynamic one) */
  add: (secret: { readonly namespace: string, readonly name: string }) => void
  /** stops fetching a secret (an evicted dynamic one): its watch ends */
  remove: (id: string) => void
  /** stops every loop and waits for them; does not close the API client */
  stop: () => Promise<void>
  /** when a loop last attempted an API request (for /livez): "is it still trying?" */
  readonly lastAttemptAt: Date
}

type Decision =
  | { kind: 'run', mode: 'watch' | 'poll' }
  | { kind: 'forbidden', reason: string }

interface Tracked {
  readonly namespace: string
  readonly name: string
  readonly id: string
  /** the resourceVersion to resume the watch from; undefined: list first */
  rv: string | undefined
  lastSuccessAt: number
  mode: 'watch' | 'poll' | undefined
  forbidden: string | undefined
  /** set by the recheck when the current run must end and this is what comes next */
  next: Decision | undefined
  /** auto mode logs once per secret that it polls, and why */
  pollLogged: boolean
  /** aborted when the source stops or this secret is removed */
  readonly signal: AbortSignal
  readonly cancel: AbortController
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout)
}

export function createSecretSource (options: SecretSourceOptions): SecretSource {
  const { store, log, metrics, mode: configuredMode } = options
  const clock = options.clock ?? (() => new Date())
  const timers = options.timers ?? realTimers
  const random = options.random ?? Math.random
  const stopping = new AbortController()
  let lastAttemptAt = clock()
  let started = false
  const loops = new Set<Promise<void>>()
  let staleTimer: unknown

  // Every request goes through here, so liveness and metrics see all of them.
  const api: ApiClient = {
    ...options.api,
    async request (method, path, body) {
      lastAttemptAt = clock()
      const verb = verbOf(method, path)
      try {
        const res = await options.api.request(method, path, body)
        metrics?.apiRequest(verb, res.status)
        return res
      } catch (err) {
        metrics?.apiRequest(verb, 'error')
        throw err
      }
    },
    watch (path, watchOptions) {
      lastAttemptAt = clock()
      return options.api.watch(path, watchOptions)
    }
  }

  let subject: Subject | undefined
  const whoIsAsking = async (): Promise<Subject | undefined> => {
    subject ??= await whoAmI(api)
    return subject
  }

  const tracked = new Map<string, Tracked>()
  function track (secret: { readonly namespace: string, readonly name: string }): Tracked {
    const cancel = new AbortController()
    const t: Tracked = {
      namespace: secret.namespace,
      name: secret.name,
      id: secretId(secret.namespace, secret.name),
      rv: undefined,
      lastSuccessAt: clock().getTime(),
      mode: undefined,
      forbidden: undefined,
      next: undefined,
      pollLogged: false,
      signal: AbortSignal.any([stopping.signal, cancel.signal]),
      cancel
    }
    tracked.set(t.id, t)
    return t
  }
  for (const secret of options.secrets) track(secret)

  function sleep (ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) { resolve(); return }
      const done = (): void => {
        signal.removeEventListener('abort', done)
        timers.clearTimeout(handle)
        resolve()
      }
      const handle = timers.setTimeout(done, ms)
      signal.addEventListener('abort', done, { once: true })
    })
  }

  function backoffMs (failures: number): number {
    const ceiling = Math.min(options.backoff.maxMs, options.backoff.initialMs * 2 ** Math.min(failures, 30))
    return Math.floor(random() * ceiling)
  }

  function succeeded (t: Tracked): void {
    t.lastSuccessAt = clock().getTime()
  }

  /** A denial, once the API server confirms it is ready; throws NotReady otherwise (the caller retries). */
  async function forbidden (t: Tracked, denied: readonly string[], mode: 'watch' | 'poll'): Promise<Decision> {
    if (!await apiServerReady(api)) throw new NotReady(`the API server denied ${denied.join(', ')} on secret ${t.id} while not ready (its authorizer may still be loading)`)
    return { kind: 'forbidden', reason: forbiddenReason(await whoIsAsking(), denied, t.namespace, t.name, VERBS_FOR[mode]) }
  }

  /** What the secret's permissions allow now, by SelfSubjectAccessReview; throws on API errors. */
  async function decide (t: Tracked): Promise<Decision> {
    if (configuredMode === 'poll') {
      const missing = await missingVerbs(api, t.namespace, t.name, ['get'])
      return missing.length === 0 ? { kind: 'run', mode: 'poll' } : forbidden(t, missing, 'poll')
    }
    const missingWatch = await missingVerbs(api, t.namespace, t.name, ['list', 'watch'])
    if (missingWatch.length === 0) return { kind: 'run', mode: 'watch' }
    if (configuredMode === 'watch') return forbidden(t, missingWatch, 'watch')
    const missingGet = await missingVerbs(api, t.namespace, t.name, ['get'])
    if (missingGet.length > 0) return forbidden(t, [...missingGet, ...missingWatch], 'watch')
    if (!t.pollLogged) {
      t.pollLogged = true
      log.warn({ secret: t.id, missing: missingWatch },
        `auto mode polls secret ${t.id} every ${options.pollIntervalMs} ms: ${(await whoIsAsking())?.display ?? 'this ServiceAccount'} may not ${missingWatch.join(', ')} it; add verbs list, watch with resourceNames [${t.name}] to its Role to watch instead`)
    }
    return { kind: 'run', mode: 'poll' }
  }

  /** decide, retried with backoff until it answers or the source stops */
  async function decideUntilAnswered (t: Tracked): Promise<Decision | undefined> {
    for (let failures = 0; !t.signal.aborted; failures++) {
      try {
        return await decide(t)
      } catch (err) {
        if (t.signal.aborted) return undefined
        store.apply({ type: 'stale', id: t.id })
        const delay = backoffMs(failures)
        log.warn({ secret: t.id, err: messageOf(err), retryInMs: delay }, `cannot ask the API server what may be done with secret ${t.id}; retrying`)
        await sleep(delay, t.signal)
      }
    }
    return undefined
  }

  /** One secret, for the life of the source: decide, run, and decide again when access changes. */
  async function supervise (t: Tracked): Promise<void> {
    let decision = await decideUntilAnswered(t)
    while (decision !== undefined && !t.signal.aborted) {
      if (decision.kind === 'forbidden') {
        if (t.forbidden !== decision.reason) {
          log.error({ secret: t.id }, `secret ${t.id} is no longer served: ${decision.reason}`)
          metrics?.watchRestart('forbidden')
        }
        t.forbidden = decision.reason
        t.mode = undefined
        store.apply({ type: 'forbidden', id: t.id, reason: decision.reason })
        await sleep(options.recheckIntervalMs, t.signal)
        decision = await decideUntilAnswered(t)
        continue
      }
      if (t.forbidden !== undefined) log.info({ secret: t.id }, `access to secret ${t.id} is back: loading it again`)
      if (t.forbidden !== undefined || t.mode !== decision.mode) t.rv = undefined
      t.forbidden = undefined
      t.mode = decision.mode
      t.next = undefined
      log.info({ secret: t.id, mode: t.mode }, `${t.mode === 'watch' ? 'watching' : 'polling'} secret ${t.id}`)

      const run = new AbortController()
      const endRun = (): void => run.abort()
      t.signal.addEventListener('abort', endRun, { once: true })
      const recheck = startRecheck(t, run)
      const outcome = t.mode === 'watch' ? await watchLoop(t, run.signal) : await pollLoop(t, run.signal)
      recheck()
      t.signal.removeEventListener('abort', endRun)
      decision = outcome ?? t.next
    }
  }

  /** Re-verifies access every recheckIntervalMs; ends the run when the answer changes. Returns its stopper. */
  function startRecheck (t: Tracked, run: AbortController): () => void {
    let handle: unknown
    let ended = false
    const tick = async (): Promise<void> => {
      try {
        const decision = await decide(t)
        if (!ended && (decision.kind === 'forbidden' || decision.mode !== t.mode)) {
          t.next = decision
          metrics?.watchRestart('recheck')
          run.abort()
          return
        }
      } catch (err) {
        // An unreachable API server is no evidence of revocation.
        log.debug({ secret: t.id, err: messageOf(err) }, 'access recheck failed; keeping the current state')
      }
      if (!ended) handle = timers.setTimeout(() => { void tick() }, options.recheckIntervalMs)
    }
    handle = timers.setTimeout(() => { void tick() }, options.recheckIntervalMs)
    return () => {
      ended = true
      timers.clearTimeout(handle)
    }
  }

  async function watchLoop (t: Tracked, signal: AbortSignal): Promise<Decision | undefined> {
    const collection = `/api/v1/namespaces/${encodeURIComponent(t.namespace)}/secrets`
    const selector = `fieldSelector=${encodeURIComponent(`metadata.name=${t.name}`)}`
    let failures = 0
    let expiredInARow = 0
    while (!signal.aborted) {
      let verb: Verb = 'list'
      let opened = false
      try {
        if (t.rv === undefined) {
          const path = `${collection}?${selector}`
          const res = await api.request('GET', path)
          if (res.status === 403) return await forbidden(t, ['list'], 'watch')
          if (res.status !== 200) throw new ApiStatusError('GET', path, res.status, res.body)
          const item = res.body?.items?.[0]
          if (item === undefined) store.apply({ type: 'deleted', id: t.id })
          else store.apply({ type: 'content', id: t.id, content: contentOf(item), resourceVersion: String(item.metadata?.resourceVersion ?? '') })
          t.rv = String(res.body?.metadata?.resourceVersion ?? '')
          succeeded(t)
          failures = 0
        }

        verb = 'watch'
        const path = `${collection}?${selector}&watch=true&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(t.rv)}&timeoutSeconds=${options.watchTimeoutSeconds}`
        const silence = new AbortController()
        let silenceTimer: unknown
        const arm = (): void => {
          timers.clearTimeout(silenceTimer)
          silenceTimer = timers.setTimeout(() => silence.abort(), options.silenceMs)
        }
        arm()
        try {
          const events = api.watch(path, {
            signal: AbortSignal.any([signal, silence.signal]),
            onOpen: () => {
              opened = true
              metrics?.apiRequest('watch', 200)
              // The server accepted our resourceVersion: what we hold is current.
              succeeded(t)
              store.apply({ type: 'synced', id: t.id })
              failures = 0
              expiredInARow = 0
            }
          })
          for await (const event of events) {
            arm()
            apply(t, event)
          }
        } finally {
          timers.clearTimeout(silenceTimer)
        }
        if (signal.aborted) return undefined
        if (silence.signal.aborted) {
          log.warn({ secret: t.id, silenceMs: options.silenceMs }, `the watch of secret ${t.id} was silent (not even a bookmark) for ${options.silenceMs} ms; restarting it`)
          metrics?.watchRestart('silent')
        } else {
          metrics?.watchRestart('timeout')
        }
      } catch (err) {
        if (signal.aborted) return undefined
        if (err instanceof ApiStatusError) {
          if (!opened && verb === 'watch') metrics?.apiRequest('watch', err.status)
          if (err.status === 410) {
            // Our resourceVersion was compacted away: list again. Back off only
            // if that keeps happening, so a relist storm cannot spin.
            log.info({ secret: t.id }, `the watch of secret ${t.id} expired (410): listing it again`)
            metrics?.watchRestart('expired')
            t.rv = undefined
            if (++expiredInARow > 1) await sleep(backoffMs(expiredInARow - 2), signal)
            continue
          }
          if (err.status === 403) {
            try {
              return await forbidden(t, [verb], 'watch')
            } catch (notReady) {
              await failed(t, notReady, failures++, signal, verb)
              continue
            }
          }
        } else if (!opened && verb === 'watch') {
          metrics?.apiRequest('watch', 'error')
        }
        await failed(t, err, failures++, signal, verb)
      }
    }
    return undefined
  }

  function apply (t: Tracked, event: WatchEvent): void {
    const rv = event.object?.metadata?.resourceVersion
    if (typeof rv === 'string' && rv !== '') t.rv = rv
    succeeded(t)
    switch (event.type) {
      case 'ADDED':
      case 'MODIFIED':
        store.apply({ type: 'content', id: t.id, content: contentOf(event.object), resourceVersion: String(rv ?? '') })
        return
      case 'DELETED':
        store.apply({ type: 'deleted', id: t.id })
        return
      case 'BOOKMARK':
        store.apply({ type: 'synced', id: t.id })
    }
  }

  async function pollLoop (t: Tracked, signal: AbortSignal): Promise<Decision | undefined> {
    const path = `/api/v1/namespaces/${encodeURIComponent(t.namespace)}/secrets/${encodeURIComponent(t.name)}`
    let failures = 0
    while (!signal.aborted) {
      try {
        const res = await api.request('GET', path)
        if (res.status === 403) return await forbidden(t, ['get'], 'poll')
        if (res.status === 404) {
          store.apply({ type: 'deleted', id: t.id })
        } else if (res.status === 200) {
          // Unchanged content only refreshes the entry: the store compares it.
          store.apply({ type: 'content', id: t.id, content: contentOf(res.body), resourceVersion: String(res.body?.metadata?.resourceVersion ?? '') })
        } else {
          throw new ApiStatusError('GET', path, res.status, res.body)
        }
        succeeded(t)
        failures = 0
        await sleep(options.pollIntervalMs, signal)
      } catch (err) {
        if (signal.aborted) return undefined
        await failed(t, err, failures++, signal, 'get')
      }
    }
    return undefined
  }

  /** Connection errors, 5xx and anything unexpected: keep the last value, marked stale, and retry. */
  async function failed (t: Tracked, err: unknown, failures: number, signal: AbortSignal, verb: Verb): Promise<void> {
    store.apply({ type: 'stale', id: t.id })
    if (verb === 'watch') metrics?.watchRestart('error')
    const delay = backoffMs(failures)
    const status = err instanceof ApiStatusError ? err.status : undefined
    const hint = status === 401
      ? `; the API server rejects the credentials even after re-reading them: check ${(await options.api.credentials().catch(() => undefined))?.source ?? 'the token'} is current and the ServiceAccount exists`
      : ''
    log.warn({ secret: t.id, verb, status, err: messageOf(err), retryInMs: delay }, `${verb} of secret ${t.id} failed${hint}; serving the last value as stale and retrying`)
    await sleep(delay, signal)
  }

  function checkStaleness (): void {
    const now = clock().getTime()
    for (const t of tracked.values()) {
      if (t.forbidden === undefined && now - t.lastSuccessAt > options.staleAfterMs) store.apply({ type: 'stale', id: t.id })
    }
    staleTimer = timers.setTimeout(checkStaleness, Math.max(10, Math.min(1000, options.staleAfterMs / 4)))
  }

  function run (t: Tracked): void {
    const loop = (async () => {
      try {
        await supervise(t)
      } catch (err) {
        // Never expected; a loop that dies would leave a secret unwatched for good.
        log.error({ secret: t.id, err: messageOf(err) }, `the loop of secret ${t.id} failed unexpectedly`)
      }
    })()
    loops.add(loop)
    void loop.finally(() => loops.delete(loop))
  }

  return {
    get lastAttemptAt () { return lastAttemptAt },
    start () {
      if (started) return
      started = true
      lastAttemptAt = clock()
      const now = clock().getTime()
      for (const t of tracked.values()) t.lastSuccessAt = now
      checkStaleness()
      for (const t of tracked.values()) run(t)
    },
    add (secret) {
      if (stopping.signal.aborted || tracked.has(secretId(secret.namespace, secret.name))) return
      const t = track(secret)
      if (started) run(t)
    },
    remove (id) {
      const t = tracked.get(id)
      if (t === undefined) return
      tracked.delete(id)
      t.cancel.abort()
      log.info({ secret: id }, `stopped fetching secret ${id}`)
    },
    async stop () {
      stopping.abort()
      timers.clearTimeout(staleTimer)
      await Promise.all([...loops])
    }
  }
}

/** A Secret object as the store holds it: base64 decoded straight into Buffers. */
export function contentOf (secret: any): SecretContent {
  const data = new Map<string, Buffer>()
  for (const [key, value] of Object.entries(secret?.data ?? {})) {
    if (typeof value === 'string') data.set(key, Buffer.from(value, 'base64'))
  }
  return { type: typeof secret?.type === 'string' ? secret.type : 'Opaque', data }
}

/** A denial from an API server that is still starting: retried like an outage. */
class NotReady extends Error {
  override readonly name = 'NotReady'
}

function verbOf (method: string, path: string): string {
  if (method === 'POST') return 'create'
  if (method !== 'GET') return method.toLowerCase()
  if (path.includes('watch=true')) return 'watch'
  return path.includes('fieldSelector=') ? 'list' : 'get'
}

function messageOf (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
