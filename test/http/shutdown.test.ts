// app.close(), as main calls it on SIGTERM: WebSockets closed with 1001, SSE
// streams ended, pending long-polls answered with what is current.
import t from 'tap'
import { once } from 'node:events'
import { request, type IncomingMessage } from 'node:http'
import { connectSse, connectWebSocket, content, HEADERS, listenLocal, setup } from './helpers.ts'

t.test('closing the app closes every stream and releases every long-poll', async (t) => {
  const { app, store, metrics, log } = await setup(t)
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '7' })
  const port = await listenLocal(app)
  const ws = await connectWebSocket(t, port, '/v1/watch')
  const sse = await connectSse(t, port, '/v1/events')
  await ws.messages.next()
  await sse.events.next()

  const poll = request({ host: '127.0.0.1', port, path: '/v1/secrets/db?wait=60s', headers: { ...HEADERS, 'if-none-match': '"boot1-1"' } })
  t.teardown(() => poll.destroy())
  poll.end()
  const answered = once(poll, 'response') as Promise<[IncomingMessage]>
  await log.waitFor((l) => l.msg === 'long-poll waiting')

  await app.close()
  const [res] = await answered
  res.resume()
  t.equal(res.statusCode, 304, 'the long-poll is answered: nothing changed')
  t.equal(res.headers.etag, '"boot1-1"')
  t.same(await ws.closed, [1001, 'the sidecar is shutting down'])
  await sse.ended
  t.ok(sse.res.complete, 'the SSE stream ended cleanly')
  t.equal(metrics.connected('websocket'), 0)
  t.equal(metrics.connected('sse'), 0)
  const woke = await log.waitFor((l) => l.msg === 'long-poll woke')
  t.equal(woke.outcome, 'shutdown')
})
