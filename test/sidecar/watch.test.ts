// Watch mode end to end: WebSocket, SSE and long-poll clients hear about a
// rotation; only content changes make events and new ETags; resume works;
// deletion and recreation; the guards; local reads cost the API nothing.
import t from 'tap'
import { Cluster } from '../cluster/cluster.ts'
import { waitFor } from '../cluster/helpers.ts'
import { Sidecar, grantedNamespace, decode } from './sidecar.ts'

const cluster = Cluster.shared()
t.teardown(() => cluster.close())

const { ns, user } = await grantedNamespace(cluster, 'watch', ['db', 'api'])
await cluster.createSecret(ns, 'db', { password: 'one' })
await cluster.createSecret(ns, 'api', { key: 'k1' })
const sidecar = await Sidecar.start(cluster, { namespace: ns, serviceAccount: 'app', args: ['--secret=db', '--secret=api', '--mode=watch'] })
t.teardown(() => sidecar.stop())

t.test('WebSocket, SSE and a pending long-poll all receive an update; label edits change nothing', async (t) => {
  const before = await sidecar.get('/v1/secrets/db')
  t.equal(before.status, 200)
  t.equal(before.headers['cache-control'], 'no-store')
  const etag = before.headers.etag as string
  t.ok(etag)
  t.equal((await sidecar.get('/v1/secrets/db', { 'if-none-match': etag })).status, 304)

  const ws = await sidecar.websocket(`?secret=${ns}/db`)
  const sse = await sidecar.sse(`?secret=${ns}/db`)
  t.teardown(() => { ws.close(); sse.close() })
  const wsSnapshot = await ws.next((m) => m.type === 'SNAPSHOT')
  t.equal(decode(wsSnapshot.data.password), 'one')
  await sse.next((m) => m.type === 'SNAPSHOT')

  // A label-only edit: no event, same ETag.
  await cluster.labelSecret(ns, 'db', { touched: 'yes' })
  // the next content change is the witness that the label edit produced nothing before it
  const longPoll = sidecar.get(`/v1/namespaces/${ns}/secrets/db?wait=30s`, { 'if-none-match': etag })
  await cluster.updateSecret(ns, 'db', { password: 'two' })

  const wsChange = await ws.next((m) => m.type !== 'SNAPSHOT')
  t.equal(wsChange.type, 'MODIFIED', 'the first event after the snapshot is the content change, not the label edit')
  t.equal(decode(wsChange.data.password), 'two')
  const sseChange = await sse.next((m) => m.type !== 'SNAPSHOT')
  t.equal(sseChange.type, 'MODIFIED')
  t.equal(sseChange.sseId, sseChange.cursor, 'the SSE id is the cursor')
  const polled = await longPoll
  t.equal(polled.status, 200)
  t.equal(decode(polled.json().data.password), 'two')
  t.not(polled.headers.etag, etag, 'a new ETag')
  t.equal(polled.headers.etag, `"${wsChange.version}"`)

  // Resume: only changes after the cursor, not the ones before it.
  await cluster.updateSecret(ns, 'db', { password: 'three' })
  const three = await ws.next((m) => m.type === 'MODIFIED' && decode(m.data.password) === 'three')
  await cluster.updateSecret(ns, 'db', { password: 'four' })
  await ws.next((m) => m.type === 'MODIFIED' && decode(m.data.password) === 'four')
  const resumedWs = await sidecar.websocket(`?secret=${ns}/db&since=${three.cursor}`)
  const resumedSse = await sidecar.sse(`?secret=${ns}/db`, { 'last-event-id': three.cursor })
  t.teardown(() => { resumedWs.close(); resumedSse.close() })
  for (const resumed of [resumedWs, resumedSse]) {
    const first = await resumed.next(() => true)
    t.equal(first.type, 'MODIFIED')
    t.equal(decode(first.data.password), 'four', 'resumes with the change after the cursor')
    t.notOk(resumed.messages.some((m) => m.type === 'SNAPSHOT'), 'no snapshot replayed')
  }
  const cursorFromAnotherBoot = await sidecar.websocket(`?secret=${ns}/db&since=deadbeef-1`)
  t.teardown(() => cursorFromAnotherBoot.close())
  t.equal((await cursorFromAnotherBoot.next(() => true)).type, 'SNAPSHOT', 'a cursor from another boot gets a full snapshot')
})

t.test('a deleted secret is 404 and DELETED; recreated, it is served again', async (t) => {
  const ws = await sidecar.websocket(`?secret=${ns}/api`)
  t.teardown(() => ws.close())
  await ws.next((m) => m.type === 'SNAPSHOT')
  await cluster.deleteSecret(ns, 'api')
  const deleted = await ws.next((m) => m.type === 'DELETED')
  t.equal(deleted.name, 'api')
  const gone = await sidecar.get('/v1/secrets/api')
  t.equal(gone.status, 404)
  t.equal(gone.json().code, 'SECRET_NOT_FOUND')

  await cluster.createSecret(ns, 'api', { key: 'k2' })
  const back = await ws.next((m) => m.type === 'MODIFIED')
  t.equal(decode(back.data.key), 'k2')
  t.equal((await sidecar.get('/v1/secrets/api/keys/key')).body.toString(), 'k2')
})

t.test('guards: header, Host, Origin; unconfigured secrets and local reads cost no API request', async (t) => {
  const missingHeader = await sidecar.get('/v1/secrets/db', { 'kube-secret-proxy': '' })
  t.equal(missingHeader.status, 403)
  t.equal(missingHeader.json().code, 'MISSING_PROXY_HEADER')
  t.match(missingHeader.json().message, /Kube-Secret-Proxy: true/)
  const foreignHost = await sidecar.get('/v1/secrets/db', { host: 'evil.example:8642' })
  t.equal(foreignHost.status, 403)
  t.equal(foreignHost.json().code, 'HOST_NOT_ALLOWED')
  const browser = await sidecar.get('/v1/secrets/db', { origin: 'http://localhost:3000' })
  t.equal(browser.status, 403)
  t.equal(browser.json().code, 'ORIGIN_REFUSED')
  t.notOk(browser.headers['access-control-allow-origin'], 'no CORS headers')

  const before = (await cluster.requestsBy(user)).length
  const unconfigured = await sidecar.get('/v1/secrets/someone-elses')
  t.equal(unconfigured.status, 404)
  t.equal(unconfigured.json().code, 'SECRET_NOT_CONFIGURED')
  for (let i = 0; i < 1000; i++) {
    const res = await sidecar.get('/v1/secrets/db/keys/password')
    if (res.status !== 200) t.fail(`read ${i} answered ${res.status}`)
  }
  const after = await cluster.requestsBy(user)
  // Open watches may be renewed meanwhile; reads must add no get/list.
  const added = after.slice(before).filter((r) => r.verb === 'get' || r.verb === 'list' || r.path.includes('someone-elses'))
  t.same(added, [], '1000 local reads and an unconfigured secret sent no API request')
})

t.test('one watch per secret, from the audit log', async (t) => {
  const watches = await waitFor('both watches in the audit log', async () => {
    const open = (await cluster.requestsBy(user)).filter((r) => r.verb === 'watch')
    const names = new Set(open.map((r) => /metadata.name%3D([a-z0-9-]+)/.exec(r.path)?.[1]))
    return names.has('db') && names.has('api') ? open : undefined
  })
  for (const r of watches) t.match(r.path, /fieldSelector=metadata.name%3D/)
  const metrics = (await sidecar.metrics('/metrics')).body.toString()
  t.match(metrics, new RegExp(`kube_secret_proxy_secret_synced\\{namespace="${ns}",secret="db"\\} 1`))
})
