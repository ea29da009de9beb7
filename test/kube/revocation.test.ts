// Authorization is checked only when a request starts: an open watch keeps
// delivering after its RoleBinding is gone. The recheck drops the value.
import t from 'tap'
import { Cluster } from '../cluster/cluster.ts'
import { appWithRole, entryWhen, startSource, valueOf } from './fixtures.ts'

const cluster = Cluster.shared()
t.teardown(() => cluster.close())

for (const mode of ['watch', 'poll'] as const) {
  t.test(`${mode} mode: a deleted RoleBinding makes the secret forbidden within the recheck interval`, async (t) => {
    const app = await appWithRole(cluster, `revoke-${mode}`, ['db'], ['get', 'list', 'watch'])
    const ns = app.namespace
    await cluster.createSecret(ns, 'db', { password: 'before' })
    const recheckIntervalMs = 1000
    const running = startSource(app, ['db'], { mode, recheckIntervalMs, pollIntervalMs: 60_000 })
    t.teardown(() => running.close())
    const id = `${ns}/db`
    await entryWhen(running.store, id, 'loaded', (e) => e.state === 'synced')

    const revokedAt = Date.now()
    await cluster.deleteRoleBinding(ns, 'app-secret-reader')
    const forbidden = await entryWhen(running.store, id, 'forbidden', (e) => e.state === 'forbidden')
    const elapsed = Date.now() - revokedAt
    t.ok(elapsed < recheckIntervalMs * 3, `dropped after ${elapsed} ms`)
    t.equal(forbidden.content, undefined, 'the value is gone from memory')
    const verbs = mode === 'watch' ? 'get, list, watch' : 'get'
    const denied = mode === 'watch' ? 'list, watch' : 'get'
    t.equal(forbidden.forbiddenReason, `ServiceAccount ${ns}/app may not ${denied} secret ${id}: add verb${mode === 'watch' ? 's' : ''} ${verbs} with resourceNames [db] to its Role`)
    t.ok(running.log.lines.some((l) => l.level === 'error' && l.msg.includes('is no longer served')), 'logged')

    // Access back: served again, and later updates arrive.
    await cluster.createRoleBinding(ns, 'app-secret-reader', 'secret-reader', 'app')
    await entryWhen(running.store, id, 'served again', (e) => e.state === 'synced' && valueOf(e, 'password') === 'before')
    if (mode === 'watch') {
      await cluster.updateSecret(ns, 'db', { password: 'after' })
      await entryWhen(running.store, id, 'updated', (e) => valueOf(e, 'password') === 'after')
    }
    t.same(running.changes.map((c) => c.type), ['MODIFIED', 'FORBIDDEN', 'MODIFIED', ...(mode === 'watch' ? ['MODIFIED'] : [])])
  })
}
