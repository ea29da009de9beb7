// A private control plane that goes away and comes back: the last value stays
// served (stale), recovers (fresh), and a compacted history forces a relist.
import t from 'tap'
import { ControlPlane } from '../cluster/control-plane.ts'
import { waitFor } from '../cluster/helpers.ts'
import { appWithRole, entryWhen, startSource, valueOf } from './fixtures.ts'

const plane = await ControlPlane.start()
t.teardown(() => plane.stop())

t.test('apiserver stopped: stale, still served, still trying; restarted: fresh, and later updates arrive', async (t) => {
  const app = await appWithRole(plane, 'outage', ['db'], ['get', 'list', 'watch'])
  const ns = app.namespace
  await plane.createSecret(ns, 'db', { password: 'kept' })
  const running = startSource(app, ['db'], { mode: 'watch', backoff: { initialMs: 100, maxMs: 500 } })
  t.teardown(() => running.close())
  const id = `${ns}/db`
  await entryWhen(running.store, id, 'loaded', (e) => e.state === 'synced')

  await plane.stopApiserver()
  const stale = await entryWhen(running.store, id, 'stale', (e) => e.state === 'stale')
  t.equal(valueOf(stale, 'password'), 'kept', 'the last value is still there')
  const attempt = running.source.lastAttemptAt.getTime()
  await waitFor('another attempt while the API is down', () => running.source.lastAttemptAt.getTime() > attempt ? true : undefined, 10_000)
  t.ok(running.requests.some(([, code]) => code === 'error'), 'failed requests counted')

  await plane.startApiserver()
  await entryWhen(running.store, id, 'fresh', (e) => e.state === 'synced')
  await plane.updateSecret(ns, 'db', { password: 'after restart' })
  await entryWhen(running.store, id, 'updated', (e) => valueOf(e, 'password') === 'after restart')
  t.same(running.changes.map((c) => c.type), ['MODIFIED', 'STALE', 'FRESH', 'MODIFIED'])
  t.ok(running.restarts.includes('error'), 'watch restart counted')
})

t.test('etcd compacted, then a forced reconnect: relisted (LIST then WATCH) and the latest value served', async (t) => {
  const app = await appWithRole(plane, 'compact', ['db'], ['get', 'list', 'watch'])
  const ns = app.namespace
  await plane.createSecret(ns, 'db', { password: 'v1' })
  const running = startSource(app, ['db'], { mode: 'watch', backoff: { initialMs: 100, maxMs: 500 } })
  t.teardown(() => running.close())
  const id = `${ns}/db`
  await entryWhen(running.store, id, 'loaded', (e) => e.state === 'synced')
  await plane.updateSecret(ns, 'db', { password: 'v2' })
  await entryWhen(running.store, id, 'v2', (e) => valueOf(e, 'password') === 'v2')

  // Move etcd past the resourceVersion the watch holds, compact it away, and
  // restart the apiserver so its watch cache starts after it.
  for (let i = 0; i < 5; i++) await plane.admin.call('POST', `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: `bump-${i}` } })
  await plane.stopApiserver()
  await plane.compactEtcd()
  await plane.startApiserver()

  await waitFor('a relist', () => running.restarts.includes('expired') ? true : undefined, 20_000)
  await plane.updateSecret(ns, 'db', { password: 'v3' })
  await entryWhen(running.store, id, 'v3', (e) => e.state === 'synced' && valueOf(e, 'password') === 'v3')

  // The restarted apiserver answers the resumed watch with 200 and then an
  // ERROR event carrying 410, so the audit log shows that watch as a 200.
  const requests = (await plane.requestsBy(app.user)).filter((r) => r.path.includes('/secrets'))
  const relist = requests.findLastIndex((r) => r.verb === 'list')
  t.same(requests.slice(relist - 1).map((r) => r.verb), ['watch', 'list', 'watch'], 'the expired watch, then LIST, then WATCH')
  t.match(requests[relist - 1]?.path, `resourceVersion=`, 'the expired watch resumed from its resourceVersion')
  t.ok(running.log.lines.some((l) => l.msg.includes('expired (410): listing it again')), 'logged')
})
