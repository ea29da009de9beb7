// The single source of truth in memory: the current content of every served
// secret, its state and versions. Only the watch source writes it (apply);
// HTTP, WebSocket, SSE and metrics read it or subscribe to its changes.
import { randomBytes } from 'node:crypto'
import { LRUCache } from 'lru-cache'

export type SecretState = 'pending' | 'synced' | 'stale' | 'forbidden' | 'deleted'

/** What a secret holds: only a change here makes a new content version. */
export interface SecretContent {
  readonly type: string
  readonly data: ReadonlyMap<string, Buffer>
}

export interface PreviousContent {
  readonly content: SecretContent
  readonly version: string
  readonly resourceVersion: string
  readonly updatedAt: Date
  /** when this previous content stops being served */
  readonly expiresAt: Date
}

export interface SecretEntry {
  /** `namespace/name` */
  readonly id: string
  readonly namespace: string
  readonly name: string
  readonly optional: boolean
  /** asked for by the app under --allow, not configured; evicted when least recently used */
  readonly dynamic: boolean
  readonly state: SecretState
  /** undefined while pending, and after a 403 or a deletion */
  readonly content: SecretContent | undefined
  /** the API object's resourceVersion of the current content */
  readonly resourceVersion: string | undefined
  /** the content version (ETag): changes only when type or data change */
  readonly version: string | undefined
  /** when the content last changed */
  readonly updatedAt: Date | undefined
  /** when the source last confirmed the content fresh (event, bookmark, list or poll) */
  readonly syncedAt: Date | undefined
  /** true once content has been loaded at least once */
  readonly loaded: boolean
  /** the permission that is missing, when state is forbidden */
  readonly forbiddenReason: string | undefined
  /** set while --keep-previous is on and its window is open */
  readonly previous: PreviousContent | undefined
}

/** What the watch source tells the store. */
export type SourceEvent =
  | { type: 'content', id: string, content: SecretContent, resourceVersion: string }
  | { type: 'synced', id: string, resourceVersion?: string }
  | { type: 'deleted', id: string }
  | { type: 'stale', id: string }
  | { type: 'forbidden', id: string, reason: string }

export type ChangeType = 'MODIFIED' | 'DELETED' | 'STALE' | 'FRESH' | 'FORBIDDEN'

/** A change subscribers hear about; `cursor` numbers it store-wide. */
export interface StoreChange {
  readonly type: ChangeType
  readonly cursor: string
  readonly entry: SecretEntry
}

export type Listener = (change: StoreChange) => void

export interface SecretStoreOptions {
  /** the configured secrets, `namespace/name`, and whether each is optional */
  secrets: ReadonlyArray<{ namespace: string, name: string, optional: boolean }>
  /** how long previous content stays readable after a change; 0 keeps none */
  keepPreviousMs?: number
  /** how many recent changes `changesSince` can replay */
  historySize?: number
  clock?: () => Date
  /** unique per process start; cursors from another boot are not resumable */
  bootId?: string
  /** dynamic secrets: `namespace/pattern` with `*` wildcards the app may ask for */
  allow?: readonly string[]
  /** dynamic secrets kept at most, and their data bytes at most */
  cacheMaxSecrets?: number
  cacheMaxBytes?: number
}

/** Who fetches dynamic secrets (the source) hears when one is wanted and when it is evicted. */
export interface DemandListener {
  added: (entry: SecretEntry) => void
  removed: (entry: SecretEntry) => void
}

export interface SecretStore {
  readonly bootId: string
  /** the cursor of the latest change */
  readonly cursor: string
  get: (id: string) => SecretEntry | undefined
  entries: () => SecretEntry[]
  /**
   * The entry a reader asks for: a configured secret, or a dynamic one that
   * --allow permits (added as pending the first time, and marked recently
   * used); undefined when neither.
   */
  demand: (namespace: string, name: string) => SecretEntry | undefined
  onDemand: (listener: DemandListener) => () => void
  /** how many dynamic secrets are held, and their data bytes */
  dynamicSize: () => { entries: number, bytes: number }
  /** only the source calls this */
  apply: (event: SourceEvent) => void
  subscribe: (listener: Listener) => () => void
  /**
   * Changes after `cursor`, as the current entry of each secret that changed
   * (latest change type per secret, preceded by its last MODIFIED when the
   * latest is a STALE or FRESH; ordered by cursor); undefined when the cursor
   * belongs to another boot or is older than the kept history.
   */
  changesSince: (cursor: string) => StoreChange[] | undefined
  /** every required secret has loaded and none is forbidden */
  ready: () => boolean
  /** previous content, or undefined when none is kept or its window closed */
  previous: (id: string) => PreviousContent | undefined
  /** forgets previous content whose window has closed; the source calls it on a timer */
  expirePrevious: () => void
}

export function secretId (namespace: string, name: string): string {
  return `${namespace}/${name}`
}

export function sameContent (a: SecretContent | undefined, b: SecretContent): boolean {
  if (a === undefined || a.type !== b.type || a.data.size !== b.data.size) return false
  for (const [key, value] of a.data) {
    const other = b.data.get(key)
    if (other === undefined || !value.equals(other)) return false
  }
  return true
}

function emptyEntry (namespace: string, name: string, optional: boolean, dynamic = false): SecretEntry {
  return {
    id: secretId(namespace, name),
    namespace,
    name,
    optional,
    dynamic,
    state: 'pending',
    content: undefined,
    resourceVersion: undefined,
    version: undefined,
    updatedAt: undefined,
    syncedAt: undefined,
    loaded: false,
    forbiddenReason: undefined,
    previous: undefined
  }
}

function contentBytes (content: SecretContent | undefined): number {
  let bytes = 0
  for (const value of content?.data.values() ?? []) bytes += value.length
  return bytes
}

/** `namespace/db-*` → a test of `namespace/name` ids. */
function allowPattern (pattern: string): RegExp {
  const escaped = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[a-z0-9.-]*')
  return new RegExp(`^${escaped}$`)
}

export function createSecretStore (options: SecretStoreOptions): SecretStore {
  const clock = options.clock ?? (() => new Date())
  const bootId = options.bootId ?? randomBytes(4).toString('hex')
  const keepPreviousMs = options.keepPreviousMs ?? 0
  const historySize = options.historySize ?? 10_000
  const entries = new Map<string, SecretEntry>()
  for (const s of options.secrets) entries.set(secretId(s.namespace, s.name), emptyEntry(s.namespace, s.name, s.optional))
  const listeners = new Set<Listener>()
  const demandListeners = new Set<DemandListener>()
  const allowed = (options.allow ?? []).map(allowPattern)
  // Dynamic secrets by recency. Only eviction and deletion release one (never
  // an overwrite, which is how a content change updates its size).
  const dynamic = new LRUCache<string, true>({
    max: options.cacheMaxSecrets ?? 100,
    maxSize: options.cacheMaxBytes ?? 16 * 1024 * 1024,
    dispose: (_value, id, reason) => {
      if (reason !== 'evict' && reason !== 'delete') return
      const entry = entries.get(id)
      entries.delete(id)
      if (entry !== undefined) for (const listener of demandListeners) listener.removed(entry)
    }
  })
  // Recent changes for resume: sequence number and secret id only, never content.
  const history: Array<{ seq: number, id: string, type: ChangeType }> = []
  let sequence = 0

  const cursorOf = (seq: number): string => `${bootId}-${seq}`

  function emit (type: ChangeType, entry: SecretEntry): void {
    sequence += 1
    history.push({ seq: sequence, id: entry.id, type })
    // Trim in batches: splicing the front of a full history on every change is O(historySize).
    if (history.length > historySize + Math.ceil(historySize / 4)) history.splice(0, history.length - historySize)
    const change: StoreChange = { type, cursor: cursorOf(sequence), entry }
    // A listener that throws must not keep the others from hearing the change,
    // nor leave the source's apply half done: everyone hears it, then the first error surfaces.
    let failure: { error: unknown } | undefined
    for (const listener of [...listeners]) {
      try {
        listener(change)
      } catch (error) {
        failure ??= { error }
      }
    }
    if (failure !== undefined) throw failure.error
  }

  function set (entry: SecretEntry): SecretEntry {
    entries.set(entry.id, entry)
    // lru-cache sizes must be positive: an empty or unloaded secret counts 1.
    if (entry.dynamic) dynamic.set(entry.id, true, { size: Math.max(1, contentBytes(entry.content)) })
    return entry
  }

  function applyContent (current: SecretEntry, content: SecretContent, resourceVersion: string): void {
    const now = clock()
    const wasStale = current.state === 'stale'
    if (current.state === 'synced' || current.state === 'stale') {
      if (sameContent(current.content, content)) {
        // A label edit, an apply no-op or a relist: fresher, not different.
        set({ ...current, state: 'synced', resourceVersion, syncedAt: now })
        if (wasStale) emit('FRESH', entries.get(current.id)!)
        return
      }
    }
    const keepPrevious = keepPreviousMs > 0 && current.content !== undefined && current.version !== undefined &&
      current.resourceVersion !== undefined && current.updatedAt !== undefined && (current.state === 'synced' || current.state === 'stale')
    const previous: PreviousContent | undefined = keepPrevious
      ? {
          content: current.content!,
          version: current.version!,
          resourceVersion: current.resourceVersion!,
          updatedAt: current.updatedAt!,
          expiresAt: new Date(now.getTime() + keepPreviousMs)
        }
      : undefined
    const entry = set({
      ...current,
      state: 'synced',
      content,
      resourceVersion,
      version: cursorOf(sequence + 1),
      updatedAt: now,
      syncedAt: now,
      loaded: true,
      forbiddenReason: undefined,
      previous
    })
    emit('MODIFIED', entry)
  }

  const store: SecretStore = {
    bootId,
    get cursor () { return cursorOf(sequence) },
    get: (id) => entries.get(id),
    entries: () => [...entries.values()],
    demand (namespace, name) {
      const id = secretId(namespace, name)
      const known = entries.get(id)
      if (known !== undefined) {
        if (known.dynamic) dynamic.get(id)
        return known
      }
      if (!allowed.some((pattern) => pattern.test(id))) return undefined
      const entry = emptyEntry(namespace, name, true, true)
      entries.set(id, entry)
      dynamic.set(id, true, { size: 1 })
      for (const listener of demandListeners) listener.added(entry)
      return entries.get(id)
    },
    onDemand (listener) {
      demandListeners.add(listener)
      return () => { demandListeners.delete(listener) }
    },
    dynamicSize () {
      let bytes = 0
      for (const id of dynamic.keys()) bytes += contentBytes(entries.get(id)?.content)
      return { entries: dynamic.size, bytes }
    },
    subscribe (listener) {
      listeners.add(listener)
      return () => { listeners.delete(listener) }
    },
    apply (event) {
      const current = entries.get(event.id)
      if (current === undefined) return
      switch (event.type) {
        case 'content':
          applyContent(current, event.content, event.resourceVersion)
          return
        case 'synced': {
          if (current.state !== 'synced' && current.state !== 'stale') return
          const entry = set({ ...current, state: 'synced', syncedAt: clock(), resourceVersion: event.resourceVersion ?? current.resourceVersion })
          if (current.state === 'stale') emit('FRESH', entry)
          return
        }
        case 'stale': {
          if (current.state !== 'synced') return
          emit('STALE', set({ ...current, state: 'stale' }))
          return
        }
        case 'deleted': {
          if (current.state === 'deleted') return
          const entry = set({ ...emptyEntry(current.namespace, current.name, current.optional, current.dynamic), state: 'deleted', loaded: current.loaded, syncedAt: clock() })
          emit('DELETED', entry)
          return
        }
        case 'forbidden': {
          if (current.state === 'forbidden' && current.forbiddenReason === event.reason) return
          // Access was revoked: the value must not outlive the permission.
          const entry = set({ ...emptyEntry(current.namespace, current.name, current.optional, current.dynamic), state: 'forbidden', loaded: current.loaded, forbiddenReason: event.reason })
          emit('FORBIDDEN', entry)
        }
      }
    },
    changesSince (cursor) {
      const match = /^(.+)-(\d+)$/.exec(cursor)
      if (match === null || match[1] !== bootId) return undefined
      const since = Number(match[2])
      if (since > sequence) return undefined
      const oldest = history[0]?.seq ?? sequence + 1
      if (since < oldest - 1) return undefined
      const latest = new Map<string, { seq: number, type: ChangeType }>()
      const modified = new Map<string, number>()
      for (const h of history) {
        if (h.seq <= since) continue
        latest.delete(h.id)
        latest.set(h.id, { seq: h.seq, type: h.type })
        if (h.type === 'MODIFIED') modified.set(h.id, h.seq)
      }
      const changes: Array<{ seq: number, id: string, type: ChangeType }> = []
      for (const [id, h] of latest) {
        // A STALE or FRESH carries no data: a client that missed the content
        // change before it must still get the content, so replay that first.
        const modifiedSeq = modified.get(id)
        if ((h.type === 'STALE' || h.type === 'FRESH') && modifiedSeq !== undefined) changes.push({ seq: modifiedSeq, id, type: 'MODIFIED' })
        changes.push({ seq: h.seq, id, type: h.type })
      }
      changes.sort((a, b) => a.seq - b.seq)
      return changes.map((c) => ({ type: c.type, cursor: cursorOf(c.seq), entry: entries.get(c.id)! }))
    },
    ready () {
      for (const entry of entries.values()) {
        // What the app asks for on the fly does not decide whether the pod is ready.
        if (entry.dynamic) continue
        if (entry.state === 'forbidden') return false
        if (!entry.optional && !entry.loaded) return false
      }
      return true
    },
    previous (id) {
      const previous = entries.get(id)?.previous
      if (previous === undefined || previous.expiresAt.getTime() <= clock().getTime()) return undefined
      return previous
    },
    expirePrevious () {
      const now = clock().getTime()
      for (const entry of entries.values()) {
        if (entry.previous !== undefined && entry.previous.expiresAt.getTime() <= now) set({ ...entry, previous: undefined })
      }
    }
  }
  return store
}
