// GET /v1/watch: snapshot, updates, resume, pings, slow clients and limits,
// as a WebSocket client sees them.
import t from 'tap'
import { once } from 'node:events'
import { b64, connectWebSocket, content, injectWebSocket, listenLocal, setup } from './helpers.ts'

t.test('on connect: a SNAPSHOT of every configured secret in its current state', async (t) => {
  const { app, store } = await setup(t)
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }, 'kubernetes.io/basic-auth'), resourceVersion: '7' })
  store.apply({ type: 'forbidden', id: 'other/tls', reason: 'watch on secrets/tls in namespace other' })
  const client = await injectWebSocket(t, app, '/v1/watch')
  t.same(await client.messages.next(), {
    type: 'SNAPSHOT', cursor: 'boot1-2', namespace: 'default', name: 'db', state: 'synced', resourceVersion: '7', version: 'boot1-1', updatedAt: '2024-01-01T00:00:00.000Z', secretType: 'kubernetes.io/basic-auth', data: { password: b64('one') }
  })
  t.same(await client.messages.next(), {
    type: 'SNAPSHOT', cursor: 'boot1-2', namespace: 'default', name: 'api', state: 'pending', resourceVersion: null, version: null, updatedAt: null
  })
  t.same(await client.messages.next(), {
    type: 'SNAPSHOT', cursor: 'boot1-2', namespace: 'other', name: 'tls', state: 'forbidden', resourceVersion: null, version: null, updatedAt: null, reason: 'watch on secrets/tls in namespace other'
  })
})

t.test('each kind of change is pushed with data only when content changed', async (t) => {
  const { app, store, metrics } = await setup(t)
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '7' })
  const client = await injectWebSocket(t, app, '/v1/watch?secret=default/db')
  t.equal((await client.messages.next()).type, 'SNAPSHOT')

  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'two' }), resourceVersion: '8' })
  t.same(await client.messages.next(), {
    type: 'MODIFIED', cursor: 'boot1-2', namespace: 'default', name: 'db', state: 'synced', resourceVersion: '8', version: 'boot1-2', updatedAt: '2024-01-01T00:00:00.000Z', secretType: 'Opaque', data: { password: b64('two') }
  })
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'two' }), resourceVersion: '9' })
  store.apply({ type: 'stale', id: 'default/db' })
  t.same(await client.messages.next(), {
    type: 'STALE', cursor: 'boot1-3', namespace: 'default', name: 'db', state: 'stale', resourceVersion: '9', version: 'boot1-2', updatedAt: '2024-01-01T00:00:00.000Z'
  }, 'a label-only update pushed nothing')
  store.apply({ type: 'synced', id: 'default/db' })
  t.match(await client.messages.next(), { type: 'FRESH', cursor: 'boot1-4', state: 'synced', version: 'boot1-2', data: undefined })
  store.apply({ type: 'deleted', id: 'default/db' })
  t.same(await client.messages.next(), {
    type: 'DELETED', cursor: 'boot1-5', namespace: 'default', name: 'db', state: 'deleted', resourceVersion: null, version: null, updatedAt: null
  })
  store.apply({ type: 'forbidden', id: 'default/db', reason: 'get on secrets/db in namespace default' })
  t.same(await client.messages.next(), {
    type: 'FORBIDDEN', cursor: 'boot1-6', namespace: 'default', name: 'db', state: 'forbidden', resourceVersion: null, version: null, updatedAt: null, reason: 'get on secrets/db in namespace default'
  })
  t.same(metrics.of('messageSent'), [['websocket', 'SNAPSHOT'], ['websocket', 'MODIFIED'], ['websocket', 'STALE'], ['websocket', 'FRESH'], ['websocket', 'DELETED'], ['websocket', 'FORBIDDEN']])
  t.equal(metrics.of('propagation').length, 5, 'one propagation per change pushed')
  t.match(metrics.of('request'), [['/v1/watch', 101, Number]])
})

t.test('?secret= selects secrets, by namespace/name or by name in the pod\'s namespace', async (t) => {
  const { app, store } = await setup(t)
  const client = await injectWebSocket(t, app, '/v1/watch?secret=db&secret=other/tls')
  t.same([(await client.messages.next()).name, (await client.messages.next()).name], ['db', 'tls'])
  store.apply({ type: 'content', id: 'default/api', content: content({ token: 'a' }), resourceVersion: '1' })
  store.apply({ type: 'content', id: 'other/tls', content: content({ 'tls.crt': 'c' }), resourceVersion: '2' })
  const next = await client.messages.next()
  t.match(next, { type: 'MODIFIED', namespace: 'other', name: 'tls', cursor: 'boot1-2' }, 'the unselected secret\'s change was not pushed')
  t.equal(client.messages.size, 0)
})

t.test('?since= resumes with only the changes after the cursor, then live ones', async (t) => {
  const { app, store } = await setup(t)
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '7' })
  const first = await injectWebSocket(t, app, '/v1/watch')
  const snapshot = await first.messages.next()

  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'two' }), resourceVersion: '8' })
  store.apply({ type: 'deleted', id: 'other/tls' })
  const resumed = await injectWebSocket(t, app, `/v1/watch?since=${snapshot.cursor}`)
  t.match(await resumed.messages.next(), { type: 'MODIFIED', cursor: 'boot1-2', name: 'db', data: { password: b64('two') } })
  t.match(await resumed.messages.next(), { type: 'DELETED', cursor: 'boot1-3', name: 'tls' })
  store.apply({ type: 'content', id: 'default/api', content: content({ token: 'a' }), resourceVersion: '9' })
  t.match(await resumed.messages.next(), { type: 'MODIFIED', cursor: 'boot1-4', name: 'api' })

  const upToDate = await injectWebSocket(t, app, '/v1/watch?since=boot1-4&secret=db')
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'three' }), resourceVersion: '10' })
  t.match(await upToDate.messages.next(), { type: 'MODIFIED', cursor: 'boot1-5', name: 'db' }, 'nothing replayed, the next change first')
})

t.test('a cursor from another boot, or an unknown one, gets a full snapshot', async (t) => {
  const { app } = await setup(t)
  for (const since of ['boot0-3', 'boot1-999', 'garbage']) {
    const client = await injectWebSocket(t, app, `/v1/watch?since=${since}&secret=db`)
    t.match(await client.messages.next(), { type: 'SNAPSHOT', name: 'db', cursor: 'boot1-0' }, since)
  }
})

t.test('pings keep the connection checked; a client that never answers is terminated', async (t) => {
  const { app, metrics, log } = await setup(t, { pingIntervalMs: 25 })
  const port = await listenLocal(app)
  const live = await connectWebSocket(t, port, '/v1/watch?secret=db')
  await once(live.ws, 'ping')
  const silent = await connectWebSocket(t, port, '/v1/watch?secret=db', { autoPong: false })
  await once(silent.ws, 'ping')
  const [code] = await silent.closed
  t.equal(code, 1006, 'terminated without a close frame')
  await log.waitFor((l) => l.msg === 'stream closed' && l.closeCode === 1006)
  t.ok(log.lines().some((l) => l.msg === 'websocket client did not answer two pings: terminated'))
  t.equal(live.ws.readyState, live.ws.OPEN, 'a client that answers stays')
  t.equal(metrics.connected('websocket'), 1)
})

t.test('a slow client is closed with 1013 when its send buffer overflows', async (t) => {
  const { app, store, metrics } = await setup(t, { sendBufferBytes: 64 * 1024 })
  const port = await listenLocal(app)
  const slow = await connectWebSocket(t, port, '/v1/watch?secret=db')
  const fast = await injectWebSocket(t, app, '/v1/watch?secret=db')
  await slow.messages.next()
  await fast.messages.next()
  // Stop reading: the kernel buffers fill, then the server's backlog grows.
  const socket = (slow.ws as unknown as { _socket: import('node:net').Socket })._socket
  socket.pause()
  let closedSlow = false
  metrics.once('slowClientClosed', () => { closedSlow = true })
  const big = Buffer.alloc(512 * 1024)
  let changes = 0
  while (!closedSlow && changes < 200) {
    big.writeUInt32BE(changes)
    store.apply({ type: 'content', id: 'default/db', content: content({ blob: Buffer.from(big) }), resourceVersion: String(changes) })
    changes += 1
    // Let I/O run between changes, so the client that reads keeps up.
    const message = await fast.messages.next()
    t.equal(message.resourceVersion, String(changes - 1))
  }
  t.ok(closedSlow, `closed after ${changes} changes`)
  t.same(metrics.of('slowClientClosed'), [['websocket']])
  socket.resume()
  const [code, reason] = await slow.closed
  t.equal(code, 1013)
  t.equal(reason, 'send buffer full: the client reads too slowly')
  t.equal(fast.ws.readyState, fast.ws.OPEN, 'a client that keeps up stays')
  t.equal(metrics.connected('websocket'), 1)
})

t.test('the client limit counts WebSocket and SSE clients: the extra WebSocket gets 1013, the extra SSE 503', async (t) => {
  const { app, metrics } = await setup(t, { maxClients: 1 })
  // A real socket: a closing injected WebSocket never tells the server its socket closed.
  const port = await listenLocal(app)
  const first = await connectWebSocket(t, port, '/v1/watch?secret=db')
  await first.messages.next()
  const extra = await connectWebSocket(t, port, '/v1/watch?secret=db')
  t.same(await extra.closed, [1013, 'too many streaming clients (1)'])
  t.equal(extra.messages.size, 0, 'no snapshot for the refused client')
  const sse = await app.inject({ url: '/v1/events', headers: { 'kube-secret-proxy': 'true' } })
  t.equal(sse.statusCode, 503)
  t.same(sse.json(), { code: 'TOO_MANY_CLIENTS', message: 'this sidecar already serves 1 streaming clients (--max-clients): close one or raise the limit' })

  const left = once(metrics, 'clients')
  first.ws.close()
  t.same(await left, ['websocket', -1])
  const next = await connectWebSocket(t, port, '/v1/watch?secret=db')
  t.equal((await next.messages.next()).type, 'SNAPSHOT', 'a place freed is taken')
})
