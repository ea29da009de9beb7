// GET /v1/events over a real socket: event ids, resume by Last-Event-ID,
// comment heartbeats, slow clients and the shared client limit.
import t from 'tap'
import { b64, connectSse, connectWebSocket, content, injectWebSocket, listenLocal, parse, setup } from './helpers.ts'

t.test('a SNAPSHOT event per selected secret, the cursor as the event id', async (t) => {
  const { app, store } = await setup(t)
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '7' })
  const port = await listenLocal(app)
  const sse = await connectSse(t, port, '/v1/events?secret=db&secret=default/api')
  t.equal(sse.res.statusCode, 200)
  t.equal(sse.res.headers['content-type'], 'text/event-stream; charset=utf-8')
  t.equal(sse.res.headers['cache-control'], 'no-store')
  t.same(Object.keys(sse.res.headers).filter((h) => h.startsWith('access-control-')), [])
  const first = await sse.events.next()
  t.equal(first.id, 'boot1-1')
  t.equal(first.event, 'SNAPSHOT')
  t.same(parse(first), { type: 'SNAPSHOT', cursor: 'boot1-1', namespace: 'default', name: 'db', state: 'synced', resourceVersion: '7', version: 'boot1-1', updatedAt: '2024-01-01T00:00:00.000Z', secretType: 'Opaque', data: { password: b64('one') } })
  const second = await sse.events.next()
  t.match(parse(second), { type: 'SNAPSHOT', name: 'api', state: 'pending' })

  store.apply({ type: 'content', id: 'other/tls', content: content({ crt: 'c' }), resourceVersion: '8' })
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'two' }), resourceVersion: '9' })
  const update = await sse.events.next()
  t.equal(update.id, 'boot1-3')
  t.equal(update.event, 'MODIFIED')
  t.match(parse(update), { name: 'db', data: { password: b64('two') } })
  store.apply({ type: 'stale', id: 'default/db' })
  const stale = await sse.events.next()
  t.equal(stale.event, 'STALE')
  t.equal(parse(stale).data, undefined)
})

t.test('Last-Event-ID resumes without replaying old changes, and wins over ?since', async (t) => {
  const { app, store } = await setup(t)
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '7' })
  const port = await listenLocal(app)
  const first = await connectSse(t, port, '/v1/events?secret=db')
  const seen = await first.events.next()
  first.req.destroy()

  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'two' }), resourceVersion: '8' })
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'three' }), resourceVersion: '9' })
  const resumed = await connectSse(t, port, '/v1/events?secret=db&since=boot0-1', { 'last-event-id': seen.id! })
  const replay = await resumed.events.next()
  t.equal(replay.event, 'MODIFIED')
  t.equal(replay.id, 'boot1-3', 'only the latest content, not each change')
  t.match(parse(replay), { data: { password: b64('three') } })

  const bySince = await connectSse(t, port, '/v1/events?secret=db&since=boot1-3')
  store.apply({ type: 'deleted', id: 'default/db' })
  const next = await bySince.events.next()
  t.equal(next.event, 'DELETED', 'nothing replayed before the live change')
  t.equal(next.id, 'boot1-4')
})

t.test('comment lines keep the stream alive', async (t) => {
  const { app } = await setup(t, { pingIntervalMs: 20 })
  const port = await listenLocal(app)
  const sse = await connectSse(t, port, '/v1/events?secret=db')
  t.equal((await sse.events.next()).event, 'SNAPSHOT')
  t.same(await sse.events.next(), { comment: 'ping' })
})

t.test('a slow SSE client\'s stream is ended when its send buffer overflows', async (t) => {
  const { app, store, metrics } = await setup(t, { sendBufferBytes: 64 * 1024 })
  const port = await listenLocal(app)
  const slow = await connectSse(t, port, '/v1/events?secret=db')
  const pacer = await injectWebSocket(t, app, '/v1/watch?secret=db')
  await slow.events.next()
  await pacer.messages.next()
  slow.res.pause()
  let closedSlow = false
  metrics.once('slowClientClosed', () => { closedSlow = true })
  const big = Buffer.alloc(512 * 1024)
  let changes = 0
  while (!closedSlow && changes < 200) {
    big.writeUInt32BE(changes)
    store.apply({ type: 'content', id: 'default/db', content: content({ blob: Buffer.from(big) }), resourceVersion: String(changes) })
    changes += 1
    await pacer.messages.next()
  }
  t.ok(closedSlow, `ended after ${changes} changes`)
  t.same(metrics.of('slowClientClosed'), [['sse']])
  slow.res.resume()
  await slow.ended
  t.ok(slow.res.complete, 'ended cleanly: what was queued arrived, then the end')
  t.equal(metrics.connected('sse'), 0)
})

t.test('SSE clients count toward the client limit', async (t) => {
  const { app } = await setup(t, { maxClients: 1 })
  const port = await listenLocal(app)
  const sse = await connectSse(t, port, '/v1/events?secret=db')
  await sse.events.next()
  const second = await connectSse(t, port, '/v1/events?secret=db')
  t.equal(second.res.statusCode, 503)
  const ws = await connectWebSocket(t, port, '/v1/watch?secret=db')
  t.same(await ws.closed, [1013, 'too many streaming clients (1)'])
})
