// Dynamic secrets end to end: --allow serves secrets the app asks for, and
// eviction at the bound stops that secret's watch (audit log) and removes its
// metric series.
import t from 'tap'
import { Cluster } from '../cluster/cluster.ts'
import { waitFor } from '../cluster/helpers.ts'
import { Sidecar } from './sidecar.ts'

const cluster = Cluster.shared()
t.teardown(() => cluster.close())

t.test('eviction at --cache-max-secrets stops the watch and drops the metrics', async (t) => {
  const ns = await cluster.namespace('dynamic')
  await cluster.createServiceAccount(ns, 'app')
  // RBAC has no wildcards: dynamic mode needs namespace-wide read access.
  await cluster.createRole(ns, 'secret-reader', [{ resources: ['secrets'], verbs: ['get', 'list', 'watch'] }])
  await cluster.createRoleBinding(ns, 'app-secret-reader', 'secret-reader', 'app')
  const user = `system:serviceaccount:${ns}:app`
  for (const name of ['dyn-a', 'dyn-b', 'dyn-c', 'private']) await cluster.createSecret(ns, name, { value: `${name}-value` })
  const sidecar = await Sidecar.start(cluster, { namespace: ns, serviceAccount: 'app', args: [`--allow=${ns}/dyn-*`, '--cache-max-secrets=2', '--mode=watch'] })
  t.teardown(() => sidecar.stop())

  for (const name of ['dyn-a', 'dyn-b']) {
    const read = await sidecar.get(`/v1/secrets/${name}/keys/value`)
    t.equal(read.status, 200, `${name} is fetched on first read`)
    t.equal(read.body.toString(), `${name}-value`)
  }
  const refused = await sidecar.get('/v1/secrets/private')
  t.equal(refused.status, 404)
  t.equal(refused.json().code, 'SECRET_NOT_CONFIGURED')
  const metricsBefore = (await sidecar.metrics('/metrics')).body.toString()
  t.match(metricsBefore, new RegExp(`kube_secret_proxy_secret_synced\\{namespace="${ns}",secret="dyn-a"\\} 1`))

  const watchOf = async (name: string) => (await cluster.requestsBy(user)).filter((r) => r.verb === 'watch' && r.path.includes(`metadata.name%3D${name}&`))
  await waitFor('the watches of dyn-a and dyn-b to open', async () => (await watchOf('dyn-a')).length > 0 && (await watchOf('dyn-b')).length > 0 ? true : undefined)

  await sidecar.get('/v1/secrets/dyn-b') // dyn-a is now the least recently read
  t.equal((await sidecar.get('/v1/secrets/dyn-c/keys/value')).body.toString(), 'dyn-c-value')

  const ended = await waitFor('the watch of dyn-a to end', async () => {
    const watches = await watchOf('dyn-a')
    return watches.every((w) => w.stage === 'ResponseComplete') ? watches : undefined
  })
  t.ok(ended.length >= 1, 'dyn-a was watched, and is no longer')
  t.ok((await watchOf('dyn-b')).some((w) => w.stage === 'ResponseStarted'), 'dyn-b is still watched')
  t.ok((await watchOf('dyn-c')).some((w) => w.stage === 'ResponseStarted'), 'dyn-c is watched')
  t.notOk((await cluster.requestsBy(user)).some((r) => r.path.includes('private')), 'no API request for a secret --allow does not match')

  const metricsAfter = (await sidecar.metrics('/metrics')).body.toString()
  t.notMatch(metricsAfter, /secret="dyn-a"/, 'no series of the evicted secret')
  t.match(metricsAfter, /kube_secret_proxy_cache_evictions_total 1/)
  t.match(metricsAfter, /kube_secret_proxy_cache_entries 2/)
})
