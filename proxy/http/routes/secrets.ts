// Reads: the list of served secrets, one secret as JSON, one key as raw
// bytes, the previous content, and the long-poll on a content version.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { errors } from '../../errors.ts'
import { secretId, type SecretEntry, type SecretStore } from '../../store/secret-store.ts'
import { KeyParams, parseWait, ReadQuery, SecretParams } from '../names.ts'
import { currentContent, unavailableError, type ContentVersion, type SecretView } from '../secret-view.ts'
import type { StreamHub } from '../stream-hub.ts'

export interface SecretRoutesOptions {
  store: SecretStore
  view: SecretView
  hub: StreamHub
  defaultNamespace: string
  maxWaitMs: number
}

export const STALE_HEADER = 'kube-secret-proxy-stale'

/** The entity tags of an If-None-Match header; a bare version is taken as its quoted ETag. */
export function parseIfNoneMatch (header: string | undefined): string[] | undefined {
  if (header === undefined) return undefined
  return header.split(',').map((tag) => tag.trim().replace(/^W\//, '')).filter((tag) => tag !== '')
    .map((tag) => tag === '*' || tag.startsWith('"') ? tag : `"${tag}"`)
}

export function etagOf (version: string): string {
  return `"${version}"`
}

function matches (tags: string[], version: string): boolean {
  return tags.includes('*') || tags.includes(etagOf(version))
}

type ReadRequest = FastifyRequest<{ Params: SecretParams | KeyParams, Querystring: ReadQuery }>

export function secretRoutes (app: FastifyInstance, options: SecretRoutesOptions): void {
  const { store, view, hub, defaultNamespace } = options

  app.get('/v1/secrets', async (_request, reply) => {
    reply.type('application/json; charset=utf-8')
    return { cursor: store.cursor, secrets: store.entries().map((entry) => view.listItem(entry)) }
  })

  for (const base of ['/v1/namespaces/:namespace/secrets/:name', '/v1/secrets/:name']) {
    app.get<{ Params: SecretParams, Querystring: ReadQuery }>(base, { schema: { params: SecretParams, querystring: ReadQuery } },
      async (request, reply) => read(request, reply, undefined))
    app.get<{ Params: KeyParams, Querystring: ReadQuery }>(`${base}/keys/:key`, { schema: { params: KeyParams, querystring: ReadQuery } },
      async (request, reply) => read(request, reply, request.params.key))
  }

  async function read (request: ReadRequest, reply: FastifyReply, key: string | undefined): Promise<FastifyReply> {
    const id = secretId(request.params.namespace ?? defaultNamespace, request.params.name)
    request.secretId = id
    if (key !== undefined) request.secretKey = key
    let entry = store.demand(request.params.namespace ?? defaultNamespace, request.params.name)
    if (entry === undefined) throw new errors.SECRET_NOT_CONFIGURED(id)
    const tags = parseIfNoneMatch(request.headers['if-none-match'])
    if (entry.dynamic && entry.state === 'pending') entry = await firstLoad(reply, entry)

    if (request.query.version === 'previous') {
      if (currentContent(entry) === undefined) throw unavailableError(entry)
      const previous = store.previous(id)
      if (previous === undefined) throw new errors.PREVIOUS_EXPIRED(id)
      return answer(reply, entry, previous, tags, key)
    }

    const waitMs = request.query.wait === undefined ? 0 : Math.min(parseWait(request.query.wait), options.maxWaitMs)
    if (waitMs > 0 && tags !== undefined) {
      const notModified = (e: SecretEntry): boolean => {
        const shown = currentContent(e)
        return shown !== undefined && matches(tags, shown.version)
      }
      if (notModified(entry)) {
        // A client that hangs up stops waiting; a stopping server answers
        // at once with whatever is current (a 304 when nothing changed).
        const gone = new AbortController()
        const onClose = (): void => { gone.abort() }
        reply.raw.once('close', onClose)
        request.log.debug({ secret: id, waitMs }, 'long-poll waiting')
        const outcome = await hub.wait(id, notModified, waitMs, gone.signal)
        request.log.debug({ secret: id, outcome }, 'long-poll woke')
        reply.raw.removeListener('close', onClose)
        entry = store.get(id) ?? entry
      }
    }

    const shown = currentContent(entry)
    if (shown === undefined) throw unavailableError(entry)
    if (entry.state === 'stale') reply.header(STALE_HEADER, 'true')
    return answer(reply, entry, shown, tags, key)
  }

  /** A dynamic secret asked for the first time: wait (up to maxWaitMs) for the source to fetch it. */
  async function firstLoad (reply: FastifyReply, entry: SecretEntry): Promise<SecretEntry> {
    const gone = new AbortController()
    const onClose = (): void => { gone.abort() }
    reply.raw.once('close', onClose)
    await hub.wait(entry.id, (e) => e.state === 'pending', options.maxWaitMs, gone.signal)
    reply.raw.removeListener('close', onClose)
    return store.get(entry.id) ?? entry
  }

  function answer (reply: FastifyReply, entry: SecretEntry, shown: ContentVersion, tags: string[] | undefined, key: string | undefined): FastifyReply {
    let value: Buffer | undefined
    if (key !== undefined) {
      value = shown.content.data.get(key)
      if (value === undefined) throw new errors.KEY_NOT_FOUND(entry.id, key)
    }
    reply.header('etag', etagOf(shown.version))
    if (tags !== undefined && matches(tags, shown.version)) return reply.code(304).send()
    if (value !== undefined) return reply.type('application/octet-stream').send(value)
    return reply.type('application/json; charset=utf-8').send(view.secretJson(entry, shown))
  }
}
