// The secrets API as a Fastify app: guards, routes, errors from the
// catalogue, the access log and the HTTP metrics. It never listens (main.ts
// does), and app.close() closes every stream and releases every long-poll.
import { performance } from 'node:perf_hooks'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyServerOptions } from 'fastify'
import websocket from '@fastify/websocket'
import { errors, type ErrorBody } from '../errors.ts'
import type { SecretStore } from '../store/secret-store.ts'
import { createGuard } from './guard.ts'
import { noMetrics, type HttpMetrics } from './http-metrics.ts'
import { invalidMessage } from './names.ts'
import { eventsRoute } from './routes/events.ts'
import { secretRoutes } from './routes/secrets.ts'
import { CLOSE_GOING_AWAY, watchRoute } from './routes/watch.ts'
import { createSecretView } from './secret-view.ts'
import { createStreamHub } from './stream-hub.ts'

export type { HttpMetrics, StreamKind } from './http-metrics.ts'

export interface AppDeps {
  store: SecretStore
  /** the pod's namespace, for /v1/secrets/:name and ?secret=name */
  defaultNamespace: string
  /** a logger instance (pino, with redaction set up by log.ts), or Fastify's `logger` option */
  logger: FastifyBaseLogger | boolean | NonNullable<Exclude<FastifyServerOptions['logger'], FastifyBaseLogger | boolean>>
  /** when set, every request needs `Authorization: Bearer <token>` */
  authToken?: Buffer | undefined
  /** Host names accepted besides localhost, 127.0.0.1 and [::1] (any port) */
  allowedHosts: readonly string[]
  /** the cap on a long-poll's ?wait= */
  maxWaitMs: number
  /** WebSocket and SSE clients together */
  maxClients: number
  /** a streaming client whose unsent backlog exceeds this is closed (WebSocket 1013, SSE ended) */
  sendBufferBytes: number
  /** WebSocket ping and SSE comment interval */
  pingIntervalMs: number
  metrics?: HttpMetrics | undefined
}

declare module 'fastify' {
  interface FastifyRequest {
    /** the secret a read is about, for the access log */
    secretId: string | null
    /** the key a read is about, for the access log */
    secretKey: string | null
    /** performance.now() when the request arrived */
    startedAt: number
    /** a WebSocket or SSE stream logs and measures itself when it ends */
    streaming: boolean
  }
}

function isLoggerInstance (logger: AppDeps['logger']): logger is FastifyBaseLogger {
  return typeof logger === 'object' && typeof (logger as { child?: unknown }).child === 'function'
}

/** The catalogue error a schema validation failure means to the user. */
function validationError (error: FastifyError, query: unknown): FastifyError {
  const first = error.validation?.[0]
  const missing = (first?.params as { missingProperty?: unknown } | undefined)?.missingProperty
  const field = typeof missing === 'string' ? missing : (first?.instancePath ?? '').split('/')[1] ?? ''
  if (error.validationContext === 'params' || field === 'secret') return new errors.INVALID_NAME(invalidMessage(field))
  if (field === 'wait') return new errors.INVALID_WAIT(JSON.stringify(String((query as { wait?: unknown } | undefined)?.wait).slice(0, 40)))
  return new errors.INVALID_QUERY(invalidMessage(field))
}

export async function buildApp (deps: AppDeps): Promise<FastifyInstance> {
  const metrics = deps.metrics ?? noMetrics
  const app = Fastify({
    ...(isLoggerInstance(deps.logger) ? { loggerInstance: deps.logger } : { logger: deps.logger }),
    // The access log below is the one line per request; Fastify's own lines
    // would add the URL and remote address twice.
    logController: new LogController({ disableRequestLogging: true }),
    // Stopping answers SHUTTING_DOWN from the catalogue instead of Fastify's own 503 body.
    return503OnClosing: false,
    // Secret names and keys may be 253 characters; longer ones fail validation (400), not routing (404).
    routerOptions: { maxParamLength: 1024 }
  })
  const view = createSecretView()
  const hub = createStreamHub({ store: deps.store, view, metrics, log: app.log, maxClients: deps.maxClients, pingIntervalMs: deps.pingIntervalMs })

  app.decorateRequest('secretId', null)
  app.decorateRequest('secretKey', null)
  app.decorateRequest('startedAt', 0)
  app.decorateRequest('streaming', false)

  app.addHook('onRequest', async (request) => {
    request.startedAt = performance.now()
    if (hub.closing) throw new errors.SHUTTING_DOWN()
  })
  app.addHook('onRequest', createGuard({ authToken: deps.authToken, allowedHosts: deps.allowedHosts }))

  app.addHook('onSend', async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    reply.header('x-content-type-options', 'nosniff')
    // A keep-alive connection left idle after a long-poll released by
    // shutdown would hold server.close() until its keep-alive timeout.
    if (hub.closing) reply.header('connection', 'close')
  })

  app.addHook('onResponse', async (request, reply) => {
    if (request.streaming) return
    const route = request.routeOptions.url ?? 'unmatched'
    const seconds = (performance.now() - request.startedAt) / 1000
    metrics.request(route, reply.statusCode, seconds)
    const length = Number(reply.getHeader('content-length') ?? 0)
    request.log.info({
      route,
      ...(request.secretId === null ? {} : { secret: request.secretId }),
      ...(request.secretKey === null ? {} : { key: request.secretKey }),
      status: reply.statusCode,
      bytes: Number.isFinite(length) ? length : 0
    }, 'read')
  })

  app.setErrorHandler(async (error: FastifyError, request, reply) => {
    let known = error.validation === undefined ? error : validationError(error, request.query)
    const status = known.statusCode ?? 500
    if (status >= 500 && !(known.code in errors)) {
      request.log.error({ err: error }, 'request failed')
      known = new errors.INTERNAL()
    }
    const body: ErrorBody = { code: known.code, message: known.message }
    return reply.code(known.statusCode ?? 500).type('application/json; charset=utf-8').send(body)
  })
  app.setNotFoundHandler(async (request) => {
    const path = (request.raw.url ?? '').split('?')[0]!.slice(0, 200)
    throw new errors.NOT_FOUND(`${request.method} ${path}`)
  })

  await app.register(websocket, {
    // Clients only listen: a large incoming message is a mistake or an attack.
    options: { maxPayload: 4096 },
    errorHandler (error, socket, request) {
      request.log.info({ route: '/v1/watch', err: { message: error.message, code: (error as NodeJS.ErrnoException).code } }, 'websocket error: terminated')
      socket.terminate()
    },
    // Runs when app.close() starts, before the server stops accepting:
    // WebSockets close with 1001, SSE streams end, long-polls answer with
    // what is current (a 304 when nothing changed), new requests get SHUTTING_DOWN.
    preClose (done) {
      hub.shutdown()
      for (const socket of app.websocketServer.clients) {
        if (socket.readyState === socket.OPEN) socket.close(CLOSE_GOING_AWAY, 'the sidecar is shutting down')
      }
      done()
    }
  })

  const routeOptions = { store: deps.store, hub, metrics, defaultNamespace: deps.defaultNamespace, maxClients: deps.maxClients, sendBufferBytes: deps.sendBufferBytes }
  secretRoutes(app, { store: deps.store, view, hub, defaultNamespace: deps.defaultNamespace, maxWaitMs: deps.maxWaitMs })
  watchRoute(app, routeOptions)
  eventsRoute(app, routeOptions)
  // Whatever way the app closes, the hub's store subscription and timer go with it.
  app.addHook('onClose', async () => { hub.shutdown() })
  return app
}
