// Secrets are the product: with debug logging on, a canary value and the
// ServiceAccount token never appear in a log line, an error body or /metrics.
import t from 'tap'
import { Cluster } from '../cluster/cluster.ts'
import { Sidecar, grantedNamespace } from './sidecar.ts'

const cluster = Cluster.shared()
t.teardown(() => cluster.close())

t.test('no canary, in any encoding, and no token anywhere a human or a scraper looks', async (t) => {
  const canary = 'canary-"quoted"-\u00e9-value-7f3a9c'
  const rotated = 'rotated-canary-51bd20'
  const { ns } = await grantedNamespace(cluster, 'secrecy', ['db'])
  await cluster.createSecret(ns, 'db', { password: canary })
  const token = await cluster.mintToken(ns, 'app')
  const sidecar = await Sidecar.start(cluster, { namespace: ns, serviceAccount: 'app', token, args: ['--secret=db', '--mode=watch', '--log-level=debug'] })
  t.teardown(() => sidecar.stop())

  const bodies: string[] = []
  const ok = await sidecar.get('/v1/secrets/db/keys/password')
  t.equal(ok.body.toString(), canary, 'the app gets the value')
  for (const path of ['/v1/secrets', '/v1/secrets/db/keys/nope', '/v1/secrets/db?version=previous', '/v1/secrets/INVALID', '/v1/nowhere']) {
    bodies.push((await sidecar.get(path, { authorization: `Bearer ${token}` })).body.toString())
  }
  bodies.push((await sidecar.get('/v1/secrets/db', { 'kube-secret-proxy': '' })).body.toString())
  const ws = await sidecar.websocket()
  t.teardown(() => ws.close())
  await ws.next((m) => m.type === 'SNAPSHOT')
  await cluster.updateSecret(ns, 'db', { password: rotated })
  await ws.next((m) => m.type === 'MODIFIED')
  bodies.push((await sidecar.metrics('/metrics')).body.toString())
  bodies.push((await sidecar.metrics('/readyz')).body.toString())
  bodies.push((await sidecar.metrics('/livez')).body.toString())
  await sidecar.stop()

  const log = sidecar.lines.join('\n')
  t.ok(sidecar.lines.length > 3, 'the log is not empty')
  t.match(log, /"level":20/, 'debug lines were written')
  const forms = (value: string): string[] => [
    value,
    Buffer.from(value).toString('base64'),
    Buffer.from(value).toString('hex'),
    JSON.stringify(value).slice(1, -1)
  ]
  for (const [where, text] of [['log', log], ['responses and /metrics', bodies.join('\n')]] as const) {
    for (const form of [...forms(canary), ...forms(rotated)]) t.notOk(text.includes(form), `${where}: no ${form.slice(0, 12)}…`)
    t.notOk(text.includes(token), `${where}: no ServiceAccount token`)
    t.notOk(text.includes(token.split('.')[2]!), `${where}: not even the token's signature`)
  }
})
