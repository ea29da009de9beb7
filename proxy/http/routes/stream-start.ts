// What the WebSocket and SSE routes share before their first message: the
// secrets a client selected, and the snapshot or the replay it starts with.
import { errors } from '../../errors.ts'
import { secretId, type SecretStore } from '../../store/secret-store.ts'
import { invalidMessage, type StreamQuery } from '../names.ts'
import type { Frame, StreamHub } from '../stream-hub.ts'

export interface Selection {
  /** the selected secret ids; undefined selects every configured secret */
  readonly ids: ReadonlySet<string> | undefined
  wants: (id: string) => boolean
}

/** The `?secret=` selection; throws INVALID_NAME or SECRET_NOT_CONFIGURED. */
export function selectionOf (query: StreamQuery, store: SecretStore, defaultNamespace: string): Selection {
  if (query.secret === undefined || query.secret.length === 0) return { ids: undefined, wants: () => true }
  const ids = new Set<string>()
  for (const selector of query.secret) {
    const slash = selector.indexOf('/')
    const namespace = slash === -1 ? defaultNamespace : selector.slice(0, slash)
    const name = selector.slice(slash + 1)
    if (name.length > 253) throw new errors.INVALID_NAME(invalidMessage('secret'))
    const id = secretId(namespace, name)
    // demand: a dynamic secret --allow permits starts loading and is pushed when it arrives
    if (store.demand(namespace, name) === undefined) throw new errors.SECRET_NOT_CONFIGURED(id)
    ids.add(id)
  }
  return { ids, wants: (id) => ids.has(id) }
}

/**
 * The messages a new client starts with: the changes after `since` when the
 * store can replay them, else a SNAPSHOT of each selected secret at the
 * current cursor. Computed in the same tick as the client joins the hub, so
 * no change falls between the two.
 */
export function initialFrames (hub: StreamHub, store: SecretStore, selection: Selection, since: string | undefined): Frame[] {
  const changes = since === undefined ? undefined : store.changesSince(since)
  if (changes === undefined) {
    const cursor = store.cursor
    return store.entries().filter((entry) => selection.wants(entry.id)).map((entry) => hub.frame('SNAPSHOT', cursor, entry))
  }
  return changes.filter((change) => selection.wants(change.entry.id)).map((change) => hub.frame(change.type, change.cursor, change.entry))
}

/** For the access log: the selected ids, or `*` for all. */
export function selectionLabel (selection: Selection): string {
  return selection.ids === undefined ? '*' : [...selection.ids].join(',')
}
