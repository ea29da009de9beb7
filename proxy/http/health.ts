// The metrics listener's app: /metrics, /readyz and /livez. It serves no
// secret, so it needs none of the secrets API's guards; its bodies stay terse
// (details live on the loopback-only /v1/secrets).
import Fastify, { type FastifyInstance } from 'fastify'
import type { Registry } from 'prom-client'
import type { SecretStore } from '../store/secret-store.ts'

export interface HealthDeps {
  store: SecretStore
  registry: Registry
  /** true while the watch/poll loop is still trying (liveness, never API health) */
  live: () => boolean
}

export function buildHealthApp (deps: HealthDeps): FastifyInstance {
  const app = Fastify({ logger: false })
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', deps.registry.contentType)
    return deps.registry.metrics()
  })
  app.get('/readyz', async (_request, reply) => {
    const ready = deps.store.ready()
    reply.code(ready ? 200 : 503).header('content-type', 'text/plain; charset=utf-8')
    return ready ? 'ok\n' : 'not ready\n'
  })
  app.get('/livez', async (_request, reply) => {
    const live = deps.live()
    reply.code(live ? 200 : 503).header('content-type', 'text/plain; charset=utf-8')
    return live ? 'ok\n' : 'the watch loop has stopped trying\n'
  })
  return app
}
