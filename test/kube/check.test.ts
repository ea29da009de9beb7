// `kube-secret-proxy check`: exit codes, the printed Role, and warnings about
// permissions beyond what the sidecar needs.
import t, { type Test } from 'tap'
import { Cluster } from '../cluster/cluster.ts'
import { createApiClient } from '../../proxy/kube/client.ts'
import { inClusterCredentials } from '../../proxy/kube/credentials.ts'
import { runCheck, CHECK_EXIT } from '../../proxy/kube/check.ts'
import type { SourceMode } from '../../proxy/kube/secret-source.ts'
import { appWithRole, type App } from './fixtures.ts'

const cluster = Cluster.shared()
t.teardown(() => cluster.close())

async function check (t: Test, app: App, names: string[], mode: SourceMode, allow: string[] = []): Promise<{ code: number, text: string }> {
  const api = createApiClient({ credentials: inClusterCredentials({ serviceAccountDir: app.pod.dir, env: app.pod.env }) })
  t.teardown(() => api.close())
  const lines: string[] = []
  const code = await runCheck({ api, secrets: names.map((name) => ({ namespace: app.namespace, name })), mode, allow, out: (line) => { lines.push(line) } })
  return { code, text: lines.join('\n') }
}

const roleYaml = (ns: string, names: string, verbs: string): string => `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: kube-secret-proxy
  namespace: ${ns}
rules:
  - apiGroups: [""]
    resources: ["secrets"]
    resourceNames: ${names}
    verbs: ${verbs}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: kube-secret-proxy
  namespace: ${ns}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: kube-secret-proxy
subjects:
  - kind: ServiceAccount
    name: app
    namespace: ${ns}`

t.test('a missing secret permission exits 1 and prints the Role that fixes it', async (t) => {
  const app = await appWithRole(cluster, 'check', ['db'], ['get', 'list', 'watch'])
  const ns = app.namespace
  const { code, text } = await check(t, app, ['db', 'api-key'], 'watch')
  t.equal(code, CHECK_EXIT.missing)
  t.match(text, `# kube-secret-proxy check: ServiceAccount ${ns}/app, mode watch`)
  t.match(text, `ok       get, list, watch secret ${ns}/db`)
  t.match(text, `MISSING  ServiceAccount ${ns}/app may not get, list, watch secret ${ns}/api-key`)
  t.notMatch(text, 'WARNING')
  t.match(text, roleYaml(ns, '["api-key", "db"]', '["get", "list", "watch"]'))
})

t.test('everything granted exits 0; poll mode asks for get only', async (t) => {
  const app = await appWithRole(cluster, 'checkok', ['db'], ['get'])
  const poll = await check(t, app, ['db'], 'poll')
  t.equal(poll.code, CHECK_EXIT.ok)
  t.match(poll.text, `ok       get secret ${app.namespace}/db`)
  t.match(poll.text, roleYaml(app.namespace, '["db"]', '["get"]'))

  // auto works with get alone (it polls), so it passes, saying what watching needs.
  const auto = await check(t, app, ['db'], 'auto')
  t.equal(auto.code, CHECK_EXIT.ok)
  t.match(auto.text, `partial  ServiceAccount ${app.namespace}/app may not list, watch secret ${app.namespace}/db (auto mode will poll it with get; add list, watch to watch it)`)

  const watch = await check(t, app, ['db'], 'watch')
  t.equal(watch.code, CHECK_EXIT.missing)
})

t.test('permissions beyond the configured secrets are warned about', async (t) => {
  const app = await appWithRole(cluster, 'checkwide', ['db'], ['get', 'list', 'watch'])
  const ns = app.namespace
  await cluster.createRole(ns, 'too-much', [{ resources: ['secrets'], verbs: ['list'] }, { resources: ['secrets'], resourceNames: ['db'], verbs: ['delete'] }])
  await cluster.createRoleBinding(ns, 'app-too-much', 'too-much', 'app')
  const { code, text } = await check(t, app, ['db'], 'watch')
  t.equal(code, CHECK_EXIT.ok, 'nothing missing')
  t.match(text, `WARNING  ServiceAccount ${ns}/app may also delete secret ${ns}/db: the sidecar only reads it; remove those verbs`)
  t.match(text, `WARNING  ServiceAccount ${ns}/app may list every secret in namespace ${ns}, not only the configured ones: restrict its Role with resourceNames`)
})

t.test('an unreachable API server exits 3', async (t) => {
  const app = await appWithRole(cluster, 'checkdown', ['db'], ['get'])
  const down = { ...app, pod: { ...app.pod, env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: '1' } } }
  const { code, text } = await check(t, down, ['db'], 'poll')
  t.equal(code, CHECK_EXIT.unreachable)
  t.match(text, 'cannot ask the API server')
})

t.test('kubeconfig credentials: the admin user is named, and its reach beyond the secrets is warned about', async (t) => {
  const { kubeconfigCredentials } = await import('../../proxy/kube/credentials.ts')
  const ns = await cluster.namespace('checkadmin')
  const api = createApiClient({ credentials: await kubeconfigCredentials({ kubeconfig: cluster.state.kubeconfig }) })
  t.teardown(() => api.close())
  const lines: string[] = []
  const code = await runCheck({ api, secrets: [{ namespace: ns, name: 'db' }], mode: 'watch', out: (line) => { lines.push(line) } })
  const text = lines.join('\n')
  t.equal(code, CHECK_EXIT.ok)
  t.match(text, /^# kube-secret-proxy check: User \S+, mode watch/)
  t.match(text, 'secrets in every namespace (a ClusterRole)')
  t.match(text, '  - kind: User')
})

t.test('--allow: namespace-wide access is required, and check says the sidecar is then the only guard', async (t) => {
  const narrow = await appWithRole(cluster, 'check-allow', ['db'], ['get', 'list', 'watch'])
  const missing = await check(t, narrow, ['db'], 'watch', [`${narrow.namespace}/db-*`])
  t.equal(missing.code, CHECK_EXIT.missing)
  t.match(missing.text, `MISSING  ServiceAccount ${narrow.namespace}/app may not get, list, watch every secret in namespace ${narrow.namespace}: --allow needs them`)

  const wide = await cluster.namespace('check-allow-wide')
  await cluster.createServiceAccount(wide, 'app')
  await cluster.createRole(wide, 'all-secrets', [{ resources: ['secrets'], verbs: ['get', 'list', 'watch'] }])
  await cluster.createRoleBinding(wide, 'app-all-secrets', 'all-secrets', 'app')
  const app: App = { ...narrow, namespace: wide, pod: cluster.podServiceAccount(wide, await cluster.mintToken(wide, 'app')) }
  const ok = await check(t, app, [], 'watch', [`${wide}/db-*`])
  t.equal(ok.code, CHECK_EXIT.ok)
  t.match(ok.text, `NOTE     with --allow, RBAC lets this sidecar read every secret in ${wide}: the sidecar's --allow patterns are then the only guard`)
})
