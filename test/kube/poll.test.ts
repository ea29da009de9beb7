// The article's get-only Role: auto mode falls back to polling, and the API
// only ever sees GETs (and access reviews) from the ServiceAccount.
import t from 'tap'
import { Cluster } from '../cluster/cluster.ts'
import { appWithRole, entryWhen, startSource, valueOf } from './fixtures.ts'
import { waitFor } from '../cluster/helpers.ts'

const cluster = Cluster.shared()
t.teardown(() => cluster.close())

t.test("auto mode polls with the article's get-only Role", async (t) => {
  const app = await appWithRole(cluster, 'poll', ['mysecretdamaggio'], ['get'])
  const ns = app.namespace
  await cluster.createSecret(ns, 'mysecretdamaggio', { secretKey: 'Ciao! I am THE secret\n' })
  const running = startSource(app, ['mysecretdamaggio'], { mode: 'auto', pollIntervalMs: 200, recheckIntervalMs: 300 })
  t.teardown(() => running.close())
  const id = `${ns}/mysecretdamaggio`

  const first = await entryWhen(running.store, id, 'loaded', (e) => e.state === 'synced')
  t.equal(valueOf(first, 'secretKey'), 'Ciao! I am THE secret\n')
  await cluster.updateSecret(ns, 'mysecretdamaggio', { secretKey: 'rotated' })
  const updated = await entryWhen(running.store, id, 'updated', (e) => valueOf(e, 'secretKey') === 'rotated')
  t.not(updated.version, first.version)

  // Unchanged polls only refresh: no further change, and several rechecks ran.
  const gets = async (): Promise<number> => (await cluster.requestsBy(app.user)).filter((r) => r.verb === 'get').length
  const before = await gets()
  await waitFor('more polls', async () => (await gets()) >= before + 5 ? true : undefined, 20_000, 100)
  t.same(running.changes.filter((c) => c.entry.id === id).map((c) => c.type), ['MODIFIED', 'MODIFIED'], 'unchanged polls changed nothing')

  const fallback = running.log.lines.filter((l) => l.msg.startsWith('auto mode polls'))
  t.equal(fallback.length, 1, 'the fallback is logged once')
  t.equal(fallback[0]?.msg, `auto mode polls secret ${id} every 200 ms: ServiceAccount ${ns}/app may not list, watch it; add verbs list, watch with resourceNames [mysecretdamaggio] to its Role to watch instead`)

  const requests = await cluster.requestsBy(app.user)
  const verbs = new Set(requests.map((r) => r.verb))
  t.notOk(verbs.has('watch'), 'no WATCH')
  t.notOk(verbs.has('list'), 'no LIST')
  t.ok(requests.filter((r) => r.verb === 'get').every((r) => r.path === `/api/v1/namespaces/${ns}/secrets/mysecretdamaggio` && r.code === 200), 'GETs of the one secret')
  t.ok(requests.filter((r) => r.verb === 'create').every((r) => /selfsubject(access)?reviews/.test(r.path)), 'the rest are access reviews')
})

t.test('poll mode: a deleted secret is reported and served again when recreated', async (t) => {
  const app = await appWithRole(cluster, 'pollgone', ['db'], ['get'])
  const ns = app.namespace
  const running = startSource(app, ['db'], { mode: 'poll', pollIntervalMs: 100 })
  t.teardown(() => running.close())
  const id = `${ns}/db`
  await entryWhen(running.store, id, 'missing', (e) => e.state === 'deleted')
  await cluster.createSecret(ns, 'db', { password: 'one' })
  await entryWhen(running.store, id, 'created', (e) => valueOf(e, 'password') === 'one')
  await cluster.deleteSecret(ns, 'db')
  await entryWhen(running.store, id, 'deleted', (e) => e.state === 'deleted' && e.content === undefined)
  await cluster.createSecret(ns, 'db', { password: 'two' })
  await entryWhen(running.store, id, 'recreated', (e) => e.state === 'synced' && valueOf(e, 'password') === 'two')
  t.same(running.changes.map((c) => c.type), ['DELETED', 'MODIFIED', 'DELETED', 'MODIFIED'])
})

t.test('nothing successful for staleAfterMs marks the secret stale; the next success makes it fresh', async (t) => {
  const app = await appWithRole(cluster, 'pollstale', ['db'], ['get'])
  await cluster.createSecret(app.namespace, 'db', { password: 'one' })
  const running = startSource(app, ['db'], { mode: 'poll', pollIntervalMs: 1500, staleAfterMs: 500 })
  t.teardown(() => running.close())
  const id = `${app.namespace}/db`
  await entryWhen(running.store, id, 'loaded', (e) => e.state === 'synced')
  const stale = await entryWhen(running.store, id, 'stale', (e) => e.state === 'stale')
  t.equal(valueOf(stale, 'password'), 'one', 'still holds the last value')
  await entryWhen(running.store, id, 'fresh again', (e) => e.state === 'synced')
  t.same(running.changes.slice(0, 3).map((c) => c.type), ['MODIFIED', 'STALE', 'FRESH'])
})
