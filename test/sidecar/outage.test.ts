// Real failures on a private control plane: the apiserver goes away, etcd is
// compacted under a watch, and the ServiceAccount token rotates.
import t from 'tap'
import { ControlPlane } from '../cluster/control-plane.ts'
import { waitFor } from '../cluster/helpers.ts'
import { Sidecar, grantedNamespace, decode } from './sidecar.ts'

const plane = await ControlPlane.start()
t.teardown(() => plane.stop())
const fastRetry = ['--mode=watch', '--backoff-initial=50ms', '--backoff-max=500ms']

t.test('apiserver down: the last value is served, marked stale, and liveness holds; back up: fresh again', async (t) => {
  const { ns } = await grantedNamespace(plane, 'outage', ['db'])
  await plane.createSecret(ns, 'db', { password: 'before' })
  const sidecar = await Sidecar.start(plane, { namespace: ns, serviceAccount: 'app', args: ['--secret=db', ...fastRetry] })
  t.teardown(() => sidecar.stop())
  const ws = await sidecar.websocket()
  t.teardown(() => ws.close())
  await ws.next((m) => m.type === 'SNAPSHOT')

  await plane.stopApiserver()
  const stale = await ws.next((m) => m.type === 'STALE')
  t.equal(stale.name, 'db')
  const read = await sidecar.get('/v1/secrets/db')
  t.equal(read.status, 200)
  t.equal(read.headers['kube-secret-proxy-stale'], 'true')
  t.equal(decode(read.json().data.password), 'before')
  t.equal((await sidecar.metrics('/livez')).status, 200, 'an API outage is no reason to restart the sidecar')
  t.match((await sidecar.metrics('/metrics')).body.toString(), new RegExp(`kube_secret_proxy_secret_stale\\{namespace="${ns}",secret="db"\\} 1`))

  await plane.startApiserver()
  await ws.next((m) => m.type === 'FRESH')
  t.notOk((await sidecar.get('/v1/secrets/db')).headers['kube-secret-proxy-stale'])
  await plane.updateSecret(ns, 'db', { password: 'after' })
  const change = await ws.next((m) => m.type === 'MODIFIED')
  t.equal(decode(change.data.password), 'after')
})

t.test('etcd compacted under the watch: the sidecar relists, then watches again', async (t) => {
  const { ns, user } = await grantedNamespace(plane, 'compact', ['db'])
  await plane.createSecret(ns, 'db', { password: 'v1' })
  const sidecar = await Sidecar.start(plane, { namespace: ns, serviceAccount: 'app', args: ['--secret=db', ...fastRetry] })
  t.teardown(() => sidecar.stop())
  // Move etcd's revision past the sidecar's resourceVersion, compact it away,
  // and force a reconnect: the old resourceVersion is gone (410).
  for (let i = 0; i < 5; i++) await plane.createSecret(ns, `filler-${i}`, { x: String(i) })
  await plane.compactEtcd()
  const before = (await plane.requestsBy(user)).length
  await plane.restartApiserver()
  await plane.updateSecret(ns, 'db', { password: 'v2' })

  await waitFor('the latest value', async () => {
    const res = await sidecar.get('/v1/secrets/db/keys/password')
    return res.body.toString() === 'v2' ? true : undefined
  })
  const after = (await plane.requestsBy(user)).slice(before).filter((r) => r.path.includes('/secrets'))
  const listAt = after.findIndex((r) => r.verb === 'list' && r.code === 200)
  t.ok(listAt >= 0, `a relist after the compaction: ${JSON.stringify(after.map((r) => `${r.verb} ${r.code}`))}`)
  t.ok(after.slice(listAt + 1).some((r) => r.verb === 'watch' && r.code === 200), 'then a watch')
})

t.test('the token rotates: a new token is picked up and the old one may die', async (t) => {
  const { ns } = await grantedNamespace(plane, 'rotate', ['db'])
  await plane.createSecret(ns, 'db', { password: 'p1' })
  const anchor = await plane.createSecret(ns, 'token-anchor', { x: 'y' })
  const oldToken = await plane.mintToken(ns, 'app', { expirationSeconds: 600, boundObject: { kind: 'Secret', name: 'token-anchor', uid: anchor.metadata.uid } })
  const sidecar = await Sidecar.start(plane, { namespace: ns, serviceAccount: 'app', token: oldToken, args: ['--secret=db', ...fastRetry] })
  t.teardown(() => sidecar.stop())
  const ws = await sidecar.websocket()
  t.teardown(() => ws.close())
  await ws.next((m) => m.type === 'SNAPSHOT')

  sidecar.pod.writeToken(await plane.mintToken(ns, 'app', { expirationSeconds: 600 }))
  await plane.deleteSecret(ns, 'token-anchor')
  const whoami = { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }
  const old = plane.as(oldToken)
  t.teardown(() => old.close())
  await waitFor('the old token to be rejected', async () =>
    (await old.send('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', whoami)).status === 401 ? true : undefined, 30_000, 250)

  await plane.restartApiserver() // every connection is new: only the new token can work
  await plane.updateSecret(ns, 'db', { password: 'p2' })
  const change = await ws.next((m) => m.type === 'MODIFIED' && decode(m.data.password) === 'p2', 0, 30_000)
  t.ok(change, 'updates keep coming with the new token')
})
