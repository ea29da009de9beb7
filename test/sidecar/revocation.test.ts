// An open watch outlives a deleted RoleBinding; the recheck does not.
import t from 'tap'
import { Cluster } from '../cluster/cluster.ts'
import { Sidecar, grantedNamespace } from './sidecar.ts'

const cluster = Cluster.shared()
t.teardown(() => cluster.close())

t.test('RoleBinding deleted: the value is dropped, reads are 403 naming the permission, readiness fails', async (t) => {
  const { ns } = await grantedNamespace(cluster, 'revoke', ['db'])
  await cluster.createSecret(ns, 'db', { password: 'secret-before-revocation' })
  const sidecar = await Sidecar.start(cluster, { namespace: ns, serviceAccount: 'app', args: ['--secret=db', '--mode=watch', '--recheck-interval=500ms'] })
  t.teardown(() => sidecar.stop())
  const ws = await sidecar.websocket()
  t.teardown(() => ws.close())
  await ws.next((m) => m.type === 'SNAPSHOT')

  await cluster.deleteRoleBinding(ns, 'app-secret-reader')
  const forbidden = await ws.next((m) => m.type === 'FORBIDDEN')
  t.equal(forbidden.name, 'db')
  t.notOk('data' in forbidden && forbidden.data !== undefined, 'no value pushed with FORBIDDEN')
  const read = await sidecar.get('/v1/secrets/db')
  t.equal(read.status, 403)
  t.equal(read.json().code, 'SECRET_FORBIDDEN')
  t.match(read.json().message, /get/)
  t.notMatch(read.body.toString(), /secret-before-revocation/)
  t.equal((await sidecar.metrics('/readyz')).status, 503)
})
