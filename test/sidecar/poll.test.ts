// The article's Role grants only get: auto mode falls back to polling.
import t from 'tap'
import { Cluster } from '../cluster/cluster.ts'
import { waitFor } from '../cluster/helpers.ts'
import { Sidecar, grantedNamespace, decode } from './sidecar.ts'

const cluster = Cluster.shared()
t.teardown(() => cluster.close())

t.test("a get-only Role: auto polls, serves the secret and its updates, and never watches", async (t) => {
  const { ns, user } = await grantedNamespace(cluster, 'poll', ['mysecretdamaggio'], ['get'])
  await cluster.createSecret(ns, 'mysecretdamaggio', { secretKey: 'Ciao! I am THE secret\n' })
  const sidecar = await Sidecar.start(cluster, { namespace: ns, serviceAccount: 'app', args: ['--secret=mysecretdamaggio', '--poll-interval=200ms'] })
  t.teardown(() => sidecar.stop())

  const first = await sidecar.get('/v1/secrets/mysecretdamaggio')
  t.equal(first.status, 200)
  t.equal(decode(first.json().data.secretKey), 'Ciao! I am THE secret\n')

  await cluster.updateSecret(ns, 'mysecretdamaggio', { secretKey: 'rotated' })
  const updated = await waitFor('the rotated value', async () => {
    const res = await sidecar.get('/v1/secrets/mysecretdamaggio/keys/secretKey')
    return res.body.toString() === 'rotated' ? res : undefined
  })
  t.not(updated.headers.etag, first.headers.etag, 'a new content version')
  t.match(sidecar.lines.join('\n'), /poll/, 'it says it polls')

  const requests = await cluster.requestsBy(user)
  const secretRequests = requests.filter((r) => r.path.includes('/secrets'))
  t.ok(secretRequests.length >= 2, 'it polled more than once')
  t.same([...new Set(secretRequests.map((r) => r.verb))], ['get'], 'only GETs of the secret: no list, no watch')
})
