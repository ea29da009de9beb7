// GET /v1/watch: the store's changes as WebSocket text messages, with pings
// for liveness and a bounded send buffer.
import { performance } from 'node:perf_hooks'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { WebSocket } from 'ws'
import { errors } from '../../errors.ts'
import type { SecretStore } from '../../store/secret-store.ts'
import type { HttpMetrics } from '../http-metrics.ts'
import { StreamQuery } from '../names.ts'
import type { StreamClient, StreamHub } from '../stream-hub.ts'
import { initialFrames, selectionLabel, selectionOf, type Selection } from './stream-start.ts'

export interface StreamRoutesOptions {
  store: SecretStore
  hub: StreamHub
  metrics: HttpMetrics
  defaultNamespace: string
  maxClients: number
  sendBufferBytes: number
}

const ROUTE = '/v1/watch'
/** 1001 Going Away: the server is stopping. */
export const CLOSE_GOING_AWAY = 1001
/** 1013 Try Again Later: too many clients, or this client read too slowly. */
export const CLOSE_TRY_AGAIN_LATER = 1013

export function watchRoute (app: FastifyInstance, options: StreamRoutesOptions): void {
  const { store, hub, metrics } = options
  // Resolved before the upgrade, so a bad selection is an HTTP error, not a close.
  const selections = new WeakMap<FastifyRequest, Selection>()

  app.route<{ Querystring: StreamQuery }>({
    method: 'GET',
    url: ROUTE,
    schema: { querystring: StreamQuery },
    preHandler: async (request) => {
      selections.set(request, selectionOf(request.query, store, options.defaultNamespace))
    },
    handler: async () => { throw new errors.UPGRADE_REQUIRED() },
    wsHandler: (socket, request) => {
      const selection = selections.get(request)!
      request.streaming = true
      let bytes = 0
      let messages = 0
      // Pings not yet answered; two in a row mean the client is gone (one
      // could be an event loop that stalled past the interval).
      let unanswered = 0

      const overflow = (): void => {
        metrics.slowClientClosed('websocket')
        hub.remove(client)
        socket.close(CLOSE_TRY_AGAIN_LATER, 'send buffer full: the client reads too slowly')
      }
      const client: StreamClient = {
        kind: 'websocket',
        wants: selection.wants,
        send (frame, live) {
          if (socket.readyState !== WebSocket.OPEN) return
          if (live && socket.bufferedAmount > options.sendBufferBytes) return overflow()
          const payload = frame.websocket()
          socket.send(payload, { binary: false })
          bytes += payload.length
          messages += 1
          metrics.messageSent('websocket', frame.type)
        },
        heartbeat () {
          if (socket.readyState !== WebSocket.OPEN) return
          if (unanswered >= 2) {
            request.log.info({ route: ROUTE }, 'websocket client did not answer two pings: terminated')
            socket.terminate()
            return
          }
          if (socket.bufferedAmount > options.sendBufferBytes) return overflow()
          unanswered += 1
          socket.ping()
        },
        shutdown () {
          socket.close(CLOSE_GOING_AWAY, 'the sidecar is shutting down')
        }
      }

      socket.on('pong', () => { unanswered = 0 })
      socket.on('close', (code) => {
        hub.remove(client)
        request.log.info({ route: ROUTE, secret: selectionLabel(selection), status: 101, bytes, messages, closeCode: code }, 'stream closed')
      })

      if (!hub.add(client)) {
        if (hub.closing) socket.close(CLOSE_GOING_AWAY, 'the sidecar is shutting down')
        else socket.close(CLOSE_TRY_AGAIN_LATER, `too many streaming clients (${options.maxClients})`)
        return
      }
      metrics.request(ROUTE, 101, (performance.now() - request.startedAt) / 1000)
      for (const frame of initialFrames(hub, store, selection, request.query.since)) client.send(frame, false)
    }
  })
}
