// What a client sees of a store entry: the JSON body of a read, the list
// item, the stream message, and the catalogue error for a state that has
// no value to serve. Bodies are built as strings from the Buffers directly.
import type { FastifyError } from 'fastify'
import { errors } from '../errors.ts'
import type { SecretContent, SecretEntry } from '../store/secret-store.ts'

export type MessageType = 'SNAPSHOT' | 'MODIFIED' | 'DELETED' | 'STALE' | 'FRESH' | 'FORBIDDEN'

/** A version of a secret's content, current or previous (a PreviousContent is one), as a read serves it. */
export interface ContentVersion {
  readonly content: SecretContent
  readonly version: string
  readonly resourceVersion: string
  readonly updatedAt: Date
}

export interface SecretView {
  /** `{ namespace, name, type, resourceVersion, version, updatedAt, data }`, data base64 */
  secretJson: (entry: SecretEntry, shown: ContentVersion) => string
  /** one stream message, serialized once for every client that gets it */
  messageJson: (type: MessageType, cursor: string, entry: SecretEntry) => string
  /** `GET /v1/secrets` item: never a value */
  listItem: (entry: SecretEntry) => Record<string, unknown>
}

const json = JSON.stringify

/** The content an entry can serve, or undefined when its state has none. */
export function currentContent (entry: SecretEntry): ContentVersion | undefined {
  if (entry.state !== 'synced' && entry.state !== 'stale') return undefined
  const { content, version, resourceVersion, updatedAt } = entry
  if (content === undefined || version === undefined || resourceVersion === undefined || updatedAt === undefined) return undefined
  return { content, version, resourceVersion, updatedAt }
}

/** The catalogue error for an entry with nothing to serve. */
export function unavailableError (entry: SecretEntry): FastifyError {
  switch (entry.state) {
    case 'deleted':
      return new errors.SECRET_NOT_FOUND(entry.id)
    case 'forbidden':
      return new errors.SECRET_FORBIDDEN(entry.id, entry.forbiddenReason ?? 'access was revoked')
    default:
      return new errors.SECRET_NOT_LOADED(entry.id)
  }
}

export function createSecretView (): SecretView {
  // Content objects are immutable and replaced on change, so their base64
  // JSON is computed once and shared by every read and every message.
  const dataJsonCache = new WeakMap<SecretContent, string>()

  function dataJson (content: SecretContent): string {
    let cached = dataJsonCache.get(content)
    if (cached === undefined) {
      const parts: string[] = []
      // Keys are Secret keys ([-._a-zA-Z0-9]) and base64 needs no escaping.
      for (const [key, value] of content.data) parts.push(`${json(key)}:"${value.toString('base64')}"`)
      cached = `{${parts.join(',')}}`
      dataJsonCache.set(content, cached)
    }
    return cached
  }

  return {
    secretJson (entry, shown) {
      return `{"namespace":${json(entry.namespace)},"name":${json(entry.name)},"type":${json(shown.content.type)},` +
        `"resourceVersion":${json(shown.resourceVersion)},"version":${json(shown.version)},` +
        `"updatedAt":${json(shown.updatedAt.toISOString())},"data":${dataJson(shown.content)}}`
    },
    messageJson (type, cursor, entry) {
      let message = `{"type":${json(type)},"cursor":${json(cursor)},"namespace":${json(entry.namespace)},"name":${json(entry.name)},` +
        `"state":${json(entry.state)},"resourceVersion":${json(entry.resourceVersion ?? null)},"version":${json(entry.version ?? null)},` +
        `"updatedAt":${json(entry.updatedAt?.toISOString() ?? null)}`
      if (entry.state === 'forbidden') message += `,"reason":${json(entry.forbiddenReason ?? null)}`
      const shown = currentContent(entry)
      if ((type === 'SNAPSHOT' || type === 'MODIFIED') && shown !== undefined) {
        message += `,"secretType":${json(shown.content.type)},"data":${dataJson(shown.content)}`
      }
      return message + '}'
    },
    listItem (entry) {
      const shown = currentContent(entry)
      return {
        namespace: entry.namespace,
        name: entry.name,
        optional: entry.optional,
        state: entry.state,
        type: shown?.content.type ?? null,
        version: shown?.version ?? null,
        resourceVersion: shown?.resourceVersion ?? null,
        keys: shown === undefined ? [] : [...shown.content.data.keys()],
        updatedAt: entry.updatedAt?.toISOString() ?? null,
        syncedAt: entry.syncedAt?.toISOString() ?? null,
        ...(entry.state === 'forbidden' ? { forbiddenReason: entry.forbiddenReason ?? null } : {})
      }
    }
  }
}
