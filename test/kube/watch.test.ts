// Watch mode against the real API server: list then watch per secret,
// content changes only, deletion and re-creation, and what it asks the API.
import t from 'tap'
import { Cluster } from '../cluster/cluster.ts'
import { appWithRole, entryWhen, startSource, valueOf } from './fixtures.ts'

const cluster = Cluster.shared()
t.teardown(() => cluster.close())

t.test('watch mode delivers creation, updates and deletion; a label edit changes nothing', async (t) => {
  const app = await appWithRole(cluster, 'watch', ['db', 'later'], ['get', 'list', 'watch'])
  const ns = app.namespace
  await cluster.createSecret(ns, 'db', { password: 'canary-one' }, { type: 'Opaque' })
  const running = startSource(app, ['db', 'later'], { mode: 'auto' })
  t.teardown(() => running.close())
  const { store } = running
  const db = `${ns}/db`
  const later = `${ns}/later`

  const first = await entryWhen(store, db, 'loaded', (e) => e.state === 'synced')
  t.equal(valueOf(first, 'password'), 'canary-one')
  t.equal(first.content?.type, 'Opaque')
  await entryWhen(store, later, 'reported missing', (e) => e.state === 'deleted')
  t.ok(running.log.lines.some((l) => l.msg === `watching secret ${db}`), 'auto picked watch')

  await cluster.createSecret(ns, 'later', { token: Buffer.from([0, 1, 2, 255]) }, { type: 'example.com/binary' })
  const created = await entryWhen(store, later, 'created', (e) => e.state === 'synced')
  t.same(created.content?.data.get('token'), Buffer.from([0, 1, 2, 255]), 'base64 decoded into bytes')
  t.equal(created.content?.type, 'example.com/binary')

  await cluster.updateSecret(ns, 'db', { password: 'canary-two' })
  const updated = await entryWhen(store, db, 'updated', (e) => valueOf(e, 'password') === 'canary-two')
  t.not(updated.version, first.version, 'new content version')

  // A label-only edit is an API event but not a content change; a later real
  // update proves the label event was seen and produced no change.
  const labelled = await cluster.labelSecret(ns, 'db', { team: 'blue' })
  await cluster.updateSecret(ns, 'db', { password: 'canary-three' })
  const third = await entryWhen(store, db, 'updated again', (e) => valueOf(e, 'password') === 'canary-three')
  const dbChanges = running.changes.filter((c) => c.entry.id === db).map((c) => `${c.type}:${valueOf(c.entry, 'password') ?? ''}`)
  t.same(dbChanges, ['MODIFIED:canary-one', 'MODIFIED:canary-two', 'MODIFIED:canary-three'], 'the label edit produced no change')
  t.ok(Number(third.resourceVersion) > Number(labelled.metadata.resourceVersion), 'followed past the label edit')

  await cluster.deleteSecret(ns, 'db')
  await entryWhen(store, db, 'deleted', (e) => e.state === 'deleted' && e.content === undefined)
  await cluster.createSecret(ns, 'db', { password: 'canary-four' })
  const recreated = await entryWhen(store, db, 'recreated', (e) => e.state === 'synced')
  t.equal(valueOf(recreated, 'password'), 'canary-four')

  const requests = await cluster.requestsBy(app.user)
  const secretRequests = requests.filter((r) => r.path.includes('/secrets'))
  for (const name of ['db', 'later']) {
    const mine = secretRequests.filter((r) => r.path.includes(`metadata.name%3D${name}`))
    t.same(mine.map((r) => r.verb), ['list', 'watch'], `${name}: one list, then one watch still open`)
    t.match(mine[1]?.path, /allowWatchBookmarks=true/)
    t.match(mine[1]?.path, /timeoutSeconds=60/)
  }
  t.notOk(secretRequests.some((r) => r.verb === 'get'), 'no GETs in watch mode')
  t.ok(running.requests.some(([verb, code]) => verb === 'watch' && code === 200), 'watch requests counted')

  const logged = running.log.text()
  for (const secret of ['canary-one', 'canary-two', 'canary-three', 'canary-four', Buffer.from('canary-two').toString('base64'), app.token]) {
    t.notOk(logged.includes(secret), 'no secret value or token in the log')
  }
})

t.test('a watch the server ends is resumed from its resourceVersion, not relisted', async (t) => {
  const app = await appWithRole(cluster, 'resume', ['db'], ['get', 'list', 'watch'])
  await cluster.createSecret(app.namespace, 'db', { password: 'a' })
  const running = startSource(app, ['db'], { watchTimeoutSeconds: 1 })
  t.teardown(() => running.close())
  await entryWhen(running.store, `${app.namespace}/db`, 'loaded', (e) => e.state === 'synced')
  const watches = async (): Promise<number> => (await cluster.requestsBy(app.user)).filter((r) => r.verb === 'watch').length
  const { waitFor } = await import('../cluster/helpers.ts')
  await waitFor('three watches', async () => (await watches()) >= 3 ? true : undefined, 20_000, 200)
  await cluster.updateSecret(app.namespace, 'db', { password: 'b' })
  await entryWhen(running.store, `${app.namespace}/db`, 'updated', (e) => valueOf(e, 'password') === 'b')
  const verbs = (await cluster.requestsBy(app.user)).filter((r) => r.path.includes('/secrets')).map((r) => r.verb)
  t.equal(verbs.filter((v) => v === 'list').length, 1, 'listed once')
  t.ok(running.restarts.filter((r) => r === 'timeout').length >= 2, 'restarts counted as timeouts')
})

t.test('watch mode without list/watch permission is forbidden with the fix', async (t) => {
  const app = await appWithRole(cluster, 'nowatch', ['db'], ['get'])
  await cluster.createSecret(app.namespace, 'db', { password: 'x' })
  const running = startSource(app, ['db'], { mode: 'watch' })
  t.teardown(() => running.close())
  const entry = await entryWhen(running.store, `${app.namespace}/db`, 'forbidden', (e) => e.state === 'forbidden')
  t.equal(entry.forbiddenReason, `ServiceAccount ${app.namespace}/app may not list, watch secret ${app.namespace}/db: add verbs get, list, watch with resourceNames [db] to its Role`)
  t.equal(entry.content, undefined)
})

t.test('a watch silent for longer than silenceMs is restarted, and keeps delivering', async (t) => {
  const app = await appWithRole(cluster, 'silent', ['db'], ['get', 'list', 'watch'])
  await cluster.createSecret(app.namespace, 'db', { password: 'a' })
  const running = startSource(app, ['db'], { silenceMs: 300 })
  t.teardown(() => running.close())
  const id = `${app.namespace}/db`
  await entryWhen(running.store, id, 'loaded', (e) => e.state === 'synced')
  const { waitFor } = await import('../cluster/helpers.ts')
  await waitFor('a silent watch restarted', () => running.restarts.includes('silent') ? true : undefined)
  await cluster.updateSecret(app.namespace, 'db', { password: 'b' })
  await entryWhen(running.store, id, 'updated', (e) => valueOf(e, 'password') === 'b')
  t.ok(running.log.lines.some((l) => l.level === 'warn' && l.msg.includes('was silent')), 'logged')
  t.same(running.changes.map((c) => c.type), ['MODIFIED', 'MODIFIED'], 'restarts are not changes')
})
