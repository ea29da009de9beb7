// GET /v1/events: the same messages as Server-Sent Events, the cursor as
// the event id so Last-Event-ID resumes; comment lines keep it alive.
import { performance } from 'node:perf_hooks'
import type { FastifyInstance } from 'fastify'
import type { ServerResponse } from 'node:http'
import { errors } from '../../errors.ts'
import { StreamQuery } from '../names.ts'
import type { StreamClient } from '../stream-hub.ts'
import { initialFrames, selectionLabel, selectionOf } from './stream-start.ts'
import type { StreamRoutesOptions } from './watch.ts'

const ROUTE = '/v1/events'
const PING = Buffer.from(': ping\n\n')
/** How long an ended stream may take to drain before its socket is destroyed. */
const END_GRACE_MS = 10_000

function endSoon (res: ServerResponse): void {
  if (!res.writableEnded) res.end()
  if (res.destroyed) return
  // A client that stopped reading never drains what is queued: bound its life.
  const timer = setTimeout(() => { res.destroy() }, END_GRACE_MS)
  timer.unref()
  res.once('close', () => { clearTimeout(timer) })
}

export function eventsRoute (app: FastifyInstance, options: StreamRoutesOptions): void {
  const { store, hub, metrics } = options

  // No HEAD twin: a HEAD would open a stream that can never carry an event.
  app.get<{ Querystring: StreamQuery }>(ROUTE, { schema: { querystring: StreamQuery }, exposeHeadRoute: false }, async (request, reply) => {
    const selection = selectionOf(request.query, store, options.defaultNamespace)
    const lastEventId = request.headers['last-event-id']
    const since = typeof lastEventId === 'string' && lastEventId !== '' ? lastEventId : request.query.since
    const res = reply.raw
    let bytes = 0
    let messages = 0

    const write = (chunk: Buffer): boolean => {
      if (res.writableEnded || res.destroyed) return false
      res.write(chunk)
      bytes += chunk.length
      return true
    }
    const overflow = (): void => {
      metrics.slowClientClosed('sse')
      hub.remove(client)
      endSoon(res)
    }
    const client: StreamClient = {
      kind: 'sse',
      wants: selection.wants,
      send (frame, live) {
        if (live && res.writableLength > options.sendBufferBytes) return overflow()
        if (!write(frame.sse())) return
        messages += 1
        metrics.messageSent('sse', frame.type)
      },
      heartbeat () {
        if (res.writableLength > options.sendBufferBytes) return overflow()
        write(PING)
      },
      shutdown () {
        endSoon(res)
      }
    }

    if (!hub.add(client)) throw hub.closing ? new errors.SHUTTING_DOWN() : new errors.TOO_MANY_CLIENTS(options.maxClients)
    request.streaming = true
    reply.hijack()
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      // The connection ends with the stream, so a stopping server is not held by an idle keep-alive socket.
      connection: 'close',
      // Tell a buffering reverse proxy (nginx) to pass events through at once.
      'x-accel-buffering': 'no'
    })
    res.flushHeaders()
    res.on('close', () => {
      hub.remove(client)
      request.log.info({ route: ROUTE, secret: selectionLabel(selection), status: 200, bytes, messages }, 'stream closed')
    })
    metrics.request(ROUTE, 200, (performance.now() - request.startedAt) / 1000)
    for (const frame of initialFrames(hub, store, selection, since)) client.send(frame, false)
  })
}
