// The fan-out: one serialization per change whatever the number of
// clients, only to the clients that selected the secret, and long-poll waits.
import t from 'tap'
import { pino } from 'pino'
import { createSecretStore } from '../../proxy/store/secret-store.ts'
import { createSecretView } from '../../proxy/http/secret-view.ts'
import { createStreamHub, type Frame, type StreamClient } from '../../proxy/http/stream-hub.ts'
import { content, RecordedMetrics } from './helpers.ts'

function setup (maxClients = 10) {
  const store = createSecretStore({ secrets: [{ namespace: 'default', name: 'db', optional: false }, { namespace: 'default', name: 'api', optional: false }], bootId: 'boot1' })
  const real = createSecretView()
  let serialized = 0
  const view = { ...real, messageJson: (...args: Parameters<typeof real.messageJson>) => { serialized += 1; return real.messageJson(...args) } }
  const metrics = new RecordedMetrics()
  const hub = createStreamHub({ store, view, metrics, log: pino({ level: 'silent' }), maxClients, pingIntervalMs: 60_000 })
  t.teardown(() => hub.shutdown())
  return { store, hub, metrics, serialized: () => serialized }
}

function client (ids: string[] | undefined, kind: 'websocket' | 'sse' = 'websocket') {
  const got: Buffer[] = []
  let shutdown = false
  const c: StreamClient = {
    kind,
    wants: (id) => ids === undefined || ids.includes(id),
    send: (frame: Frame) => { got.push(kind === 'websocket' ? frame.websocket() : frame.sse()) },
    heartbeat: () => {},
    shutdown: () => { shutdown = true }
  }
  return { c, got, isShutdown: () => shutdown }
}

t.test('a change is serialized once and the same bytes go to every client that selected it', async (t) => {
  const { store, hub, serialized } = setup()
  const a = client(undefined)
  const b = client(['default/db'])
  const c = client(['default/api'])
  const d = client(undefined, 'sse')
  for (const x of [a, b, c, d]) t.ok(hub.add(x.c))
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '1' })
  t.equal(serialized(), 1)
  t.equal(a.got.length, 1)
  t.equal(a.got[0], b.got[0], 'the very same Buffer')
  t.same(c.got, [], 'not selected')
  t.equal(d.got[0]?.toString(), `id: boot1-1\nevent: MODIFIED\ndata: ${a.got[0]?.toString()}\n\n`)
})

t.test('the client limit, and shutdown closes every client and refuses new ones', async (t) => {
  const { hub, metrics } = setup(2)
  const a = client(undefined)
  const b = client(undefined, 'sse')
  t.ok(hub.add(a.c))
  t.ok(hub.add(b.c))
  t.notOk(hub.add(client(undefined).c), 'over the limit')
  hub.remove(a.c)
  hub.remove(a.c)
  t.ok(hub.add(client(undefined).c))
  hub.shutdown()
  t.ok(b.isShutdown())
  t.ok(hub.closing)
  t.notOk(hub.add(client(undefined).c))
  t.equal(metrics.connected('websocket') + metrics.connected('sse'), 0)
})

t.test('a wait settles on a change that ends it, on timeout, on abort and on shutdown', async (t) => {
  const { store, hub } = setup()
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '1' })
  const unchanged = (e: { version: string | undefined }) => e.version === 'boot1-1'
  const changed = hub.wait('default/db', unchanged, 60_000, new AbortController().signal)
  store.apply({ type: 'stale', id: 'default/db' })
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'two' }), resourceVersion: '2' })
  t.equal(await changed, 'changed')

  t.equal(await hub.wait('default/db', () => true, 1, new AbortController().signal), 'timeout')

  const abort = new AbortController()
  const gone = hub.wait('default/db', () => true, 60_000, abort.signal)
  abort.abort()
  t.equal(await gone, 'gone')

  const stopping = hub.wait('default/db', () => true, 60_000, new AbortController().signal)
  hub.shutdown()
  t.equal(await stopping, 'shutdown')
  t.equal(await hub.wait('default/db', () => true, 60_000, new AbortController().signal), 'shutdown', 'no new wait once stopping')
})

t.test('a client that throws does not reach the store\'s source', async (t) => {
  const { store, hub } = setup()
  const bad: StreamClient = { ...client(undefined).c, send: () => { throw new Error('bug') } }
  const good = client(undefined)
  hub.add(bad)
  hub.add(good.c)
  t.doesNotThrow(() => store.apply({ type: 'content', id: 'default/db', content: content({ a: 'b' }), resourceVersion: '1' }))
  t.equal(good.got.length, 1, 'the other clients still get it')
})
