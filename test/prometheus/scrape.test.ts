// A real Prometheus scrapes a running sidecar: the target is up, the
// per-secret gauges come back through the query API, the example alert rules
// load and evaluate, the Grafana dashboard's queries run, and the forbidden alert fires when the RoleBinding goes.
// `promtool check metrics` finds nothing to say about the /metrics text.
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Cluster } from '../cluster/cluster.ts'
import { freePort } from '../cluster/control-plane.ts'
import { waitFor } from '../cluster/helpers.ts'
import { Sidecar, grantedNamespace } from '../sidecar/sidecar.ts'
import { requireCommands } from '../examples/toolchain.ts'

const ALERTS = join(import.meta.dirname, '..', '..', 'examples', 'prometheus', 'alerts.yaml')
const dashboard = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'examples', 'grafana', 'kube-secret-proxy.json'), 'utf8')) as {
  panels: Array<{ title: string, targets: Array<{ expr: string }> }>
}

const cluster = Cluster.shared()
t.teardown(() => cluster.close())
const { ns } = await grantedNamespace(cluster, 'prom', ['db'])
await cluster.createSecret(ns, 'db', { password: 'scraped' })
const sidecar = await Sidecar.start(cluster, { namespace: ns, serviceAccount: 'app', args: ['--secret=db', '--recheck-interval=1s'] })
t.teardown(() => sidecar.stop())

t.test('promtool check metrics on /metrics reports nothing', async (t) => {
  if (!requireCommands(t, 'promtool check metrics', ['promtool'])) return
  const metrics = await sidecar.metrics('/metrics')
  t.equal(metrics.status, 200)
  const check = spawnSync('promtool', ['check', 'metrics'], { input: metrics.body, encoding: 'utf8' })
  const findings = (check.stdout + check.stderr).split('\n').filter((line) => line !== '')
  t.strictSame(findings, [], 'promtool check metrics finds nothing')
  t.equal(check.status, 0)
})

t.test('a real Prometheus scrapes the sidecar and evaluates the example alerts', async (t) => {
  if (!requireCommands(t, 'the Prometheus scrape test', ['prometheus'])) return
  const dir = mkdtempSync(join(tmpdir(), 'ksp-prometheus-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const port = await freePort()
  writeFileSync(join(dir, 'prometheus.yml'), `global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - ${ALERTS}
scrape_configs:
  - job_name: kube-secret-proxy
    static_configs:
      - targets: ['127.0.0.1:${sidecar.metricsPort}']
        labels: { pod: example-pod }
`)
  const child = spawn('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn'
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  child.stdout.on('data', (c: Buffer) => { log += c.toString() })
  child.stderr.on('data', (c: Buffer) => { log += c.toString() })
  const exited = once(child, 'exit')
  t.teardown(async () => {
    if (child.exitCode === null) child.kill('SIGTERM')
    await exited
  })

  const api = async (path: string): Promise<any> => {
    if (child.exitCode !== null) throw new Error(`prometheus exited (${child.exitCode}): ${log}`)
    const res = await fetch(`http://127.0.0.1:${port}/api/v1/${path}`)
    const body = await res.json() as { status: string, data: any }
    if (body.status !== 'success') throw new Error(`${path}: ${JSON.stringify(body)}`)
    return body.data
  }

  const target = await waitFor('a successful scrape', async () => {
    const data = await api('targets')
    const found = data.activeTargets.find((x: any) => x.health === 'up')
    return found
  }, 30_000, 200)
  t.equal(target.scrapeUrl, `http://127.0.0.1:${sidecar.metricsPort}/metrics`)
  t.equal(target.lastError, '')

  const synced = await waitFor('kube_secret_proxy_secret_synced through the query API', async () => {
    const data = await api(`query?query=${encodeURIComponent('kube_secret_proxy_secret_synced')}`)
    return data.result.length > 0 ? data.result : undefined
  }, 30_000, 200)
  t.equal(synced.length, 1)
  t.strictSame(synced[0].metric, {
    __name__: 'kube_secret_proxy_secret_synced',
    instance: `127.0.0.1:${sidecar.metricsPort}`,
    job: 'kube-secret-proxy',
    namespace: ns,
    pod: 'example-pod',
    secret: 'db'
  })
  t.equal(synced[0].value[1], '1')

  const groups = await waitFor('the example rules to be evaluated', async () => {
    const data = await api('rules')
    const rules = data.groups.flatMap((g: any) => g.rules)
    return rules.length === 3 && rules.every((r: any) => r.health === 'ok' && r.lastEvaluation !== '0001-01-01T00:00:00Z') ? rules : undefined
  }, 30_000, 200)
  t.strictSame(groups.map((r: any) => r.state), ['inactive', 'inactive', 'inactive'], 'nothing fires while the secret is synced')

  // The Grafana dashboard's queries parse and name metrics the sidecar exports.
  const exported = new Set([...(await sidecar.metrics('/metrics')).body.toString().matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]))
  for (const panel of dashboard.panels) {
    for (const { expr } of panel.targets) {
      for (const [name] of expr.matchAll(/kube_secret_proxy_\w+/g)) {
        t.ok(exported.has(name.replace(/_(bucket|sum|count)$/, '')), `${panel.title}: ${name} is exported`)
      }
      const query = expr.replaceAll('$__rate_interval', '1m').replaceAll('$job', '.+').replaceAll('$instance', '.+')
      await t.resolves(api(`query?query=${encodeURIComponent(query)}`), `${panel.title}: Prometheus accepts ${query}`)
    }
  }

  // Revoke access: the sidecar's recheck drops the secret, the next scrape says
  // forbidden, and the alert's expression holds (it is pending for its `for:`;
  // firing after that is promtool test rules' part, in rules.test.ts).
  await cluster.deleteRoleBinding(ns, 'app-secret-reader')
  const alert = await waitFor('KubeSecretProxySecretForbidden to become active', async () => {
    const data = await api('alerts')
    return data.alerts.find((a: any) => a.labels.alertname === 'KubeSecretProxySecretForbidden' && (a.state === 'pending' || a.state === 'firing'))
  }, 30_000, 200)
  t.match(alert.labels, { namespace: ns, secret: 'db', pod: 'example-pod', severity: 'critical' })
  t.equal(alert.annotations.summary, 'kube-secret-proxy may no longer read a secret.')
})
