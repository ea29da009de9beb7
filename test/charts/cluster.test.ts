// The charts against the real control plane: helm install (no --wait: no
// controller-manager runs), the rendered pods judged by the API server's own
// "restricted" Pod Security admission, and — since no kubelet runs them — the
// rendered sidecar container's args and env run as the sidecar with a token of
// the chart's ServiceAccount: it must become ready and serve the secret, and
// that token must be refused any other secret.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Cluster } from '../cluster/cluster.ts'
import { Sidecar, MAIN, decode } from '../sidecar/sidecar.ts'
import { Helm, APP_CHART, FIXTURE_CHART, parseManifests, podSpecOf, sidecarOf, one, SA_TOKEN_VOLUME } from './helm.ts'

const cluster = Cluster.shared()
const helm = await Helm.prepare()
t.teardown(() => { helm.cleanup(); cluster.close() })
const kube = ['--kubeconfig', cluster.state.kubeconfig]

const ns = await cluster.namespace('helm', {
  'pod-security.kubernetes.io/enforce': 'restricted',
  'pod-security.kubernetes.io/enforce-version': 'latest'
})
await cluster.createSecret(ns, 'mysecretdamaggio', { secretKey: 'Ciao! I am THE secret\n' })
await cluster.createSecret(ns, 'someone-elses-secret', { password: 'not yours' })
// What kube-controller-manager's root CA publisher would have put in every namespace.
await cluster.admin.call('POST', `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name: 'kube-root-ca.crt' }, data: { 'ca.crt': cluster.ca.toString() } })

const installed: string[] = []
t.teardown(async () => {
  for (const release of installed) await helm.run(['uninstall', release, '--namespace', ns, ...kube], { allowFailure: true })
  await cluster.admin.send('DELETE', `/api/v1/namespaces/${ns}`)
})

async function install (release: string, chart: string, args: string[] = []): Promise<string> {
  const out = await helm.run(['install', release, chart, '--namespace', ns, ...kube, ...args])
  installed.push(release)
  return out.stdout
}

const apiPath = (kind: string, name: string): string => ({
  Deployment: `/apis/apps/v1/namespaces/${ns}/deployments/${name}`,
  Job: `/apis/batch/v1/namespaces/${ns}/jobs/${name}`,
  CronJob: `/apis/batch/v1/namespaces/${ns}/cronjobs/${name}`
})[kind]!

t.test('helm install: the article release, a bearer-token release and the fixture chart', async (t) => {
  const notes = await install('article', APP_CHART)
  t.match(notes, /STATUS: deployed/)
  t.match(notes, /ServiceAccount danigian may \[get, list, watch\] exactly these secrets:\n {2}- mysecretdamaggio/, 'NOTES.txt says what was granted')
  t.match(notes, `helm test article --namespace ${ns}`)
  await install('guarded', APP_CHART, ['--values', `${APP_CHART}/ci/auth-token-values.yaml`, '--set', 'serviceAccount.name='])
  await install('fixture', FIXTURE_CHART, ['--set', 'sidecar.secrets={mysecretdamaggio}'])

  const sa = await cluster.admin.call('GET', `/api/v1/namespaces/${ns}/serviceaccounts/danigian`)
  t.equal(sa.automountServiceAccountToken, false)
  const role = await cluster.admin.call('GET', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles/article-kube-secret-proxy-secret-reader`)
  t.same(role.rules, [{ apiGroups: [''], resources: ['secrets'], resourceNames: ['mysecretdamaggio'], verbs: ['get', 'list', 'watch'] }])
  const binding = await cluster.admin.call('GET', `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings/article-kube-secret-proxy-secret-reader`)
  t.same(binding.subjects, [{ kind: 'ServiceAccount', name: 'danigian', namespace: ns }])
  for (const [kind, name] of [['Deployment', 'article-kube-secret-proxy'], ['Deployment', 'guarded-kube-secret-proxy'], ['Deployment', 'fixture-server'], ['Job', 'fixture-migrate'], ['CronJob', 'fixture-report']] as const) {
    t.equal((await cluster.admin.send('GET', apiPath(kind, name))).status, 200, `${kind} ${name} exists`)
  }

  // The generated bearer token survives an upgrade (lookup), instead of changing under the running app.
  const tokenPath = `/api/v1/namespaces/${ns}/secrets/guarded-kube-secret-proxy-auth-token`
  const before = (await cluster.admin.call('GET', tokenPath)).data.token
  t.match(decode(before), /^[A-Za-z0-9]{48}$/)
  await helm.run(['upgrade', 'guarded', APP_CHART, '--namespace', ns, ...kube, '--values', `${APP_CHART}/ci/auth-token-values.yaml`, '--set', 'serviceAccount.name='])
  t.equal((await cluster.admin.call('GET', tokenPath)).data.token, before, 'same token after helm upgrade')
})

/** A Pod made of a pod template, as a ReplicaSet or Job controller would create it. */
function podFrom (name: string, spec: any): any {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec }
}

t.test('the pods pass the API server\'s "restricted" Pod Security admission, native sidecar included', async (t) => {
  const templates: Array<[string, any]> = []
  for (const [kind, name] of [['Deployment', 'article-kube-secret-proxy'], ['Deployment', 'guarded-kube-secret-proxy'], ['Deployment', 'fixture-server'], ['Job', 'fixture-migrate'], ['CronJob', 'fixture-report']] as const) {
    templates.push([`${name}-pod`, podSpecOf(await cluster.admin.call('GET', apiPath(kind, name)))])
  }
  const plain = await helm.template(APP_CHART, { release: 'plain', namespace: ns, values: [`${APP_CHART}/ci/plain-container-values.yaml`] })
  templates.push(['plain-container-pod', podSpecOf(one(plain, 'Deployment'))])
  const hooks = parseManifests((await helm.run(['get', 'hooks', 'article', '--namespace', ns, ...kube])).stdout)
  templates.push(['helm-test-pod', one(hooks, 'Pod').spec])

  for (const [name, spec] of templates) {
    const created = await cluster.admin.send('POST', `/api/v1/namespaces/${ns}/pods`, podFrom(name, spec))
    t.equal(created.status, 201, `${name} admitted${created.status === 201 ? '' : `: ${created.body.message}`}`)
    if (created.status !== 201 || name === 'helm-test-pod') continue
    const { native } = sidecarOf(created.body.spec)
    t.equal(native, name !== 'plain-container-pod')
    if (native) t.equal(sidecarOf(created.body.spec).container.restartPolicy, 'Always', `${name}: the API server kept the native sidecar`)
    t.equal(created.body.spec.automountServiceAccountToken, false)
  }

  // The namespace does enforce: the same pod with one weakened field is refused.
  const weakened = structuredClone(templates[0]![1])
  sidecarOf(weakened).container.securityContext.allowPrivilegeEscalation = true
  const refused = await cluster.admin.send('POST', `/api/v1/namespaces/${ns}/pods`, podFrom('weakened-pod', weakened))
  t.equal(refused.status, 403)
  t.match(refused.body.message, /violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false \(container "kube-secret-proxy"/)
})

/** $(VAR) references expanded as the kubelet does, from the env defined before them. */
const expand = (value: string, env: Record<string, string>): string =>
  value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (ref, name: string) => env[name] ?? ref)

/**
 * The rendered sidecar container, as a kubelet on a loopback "node" would run
 * it: Downward API fields resolved (the pod IP is 127.0.0.1), $(VAR)s
 * expanded, Secret volumes written to a temp dir and their mount paths
 * rewritten to it. The ServiceAccount token volume is Sidecar.start's own
 * --service-account-dir.
 */
async function runnable (spec: any): Promise<{ args: string[], env: Record<string, string>, serviceAccount: string, expirationSeconds: number }> {
  const { container } = sidecarOf(spec)
  const fields: Record<string, string> = { 'status.podIP': '127.0.0.1', 'metadata.namespace': ns }
  const env: Record<string, string> = {}
  for (const e of container.env) {
    if (e.valueFrom !== undefined) {
      const value = fields[e.valueFrom.fieldRef?.fieldPath]
      if (value === undefined) throw new Error(`env ${e.name}: only fieldRef ${Object.keys(fields).join(', ')} can be resolved here`)
      env[e.name] = value
    } else env[e.name] = expand(e.value, env)
  }
  let args: string[] = container.args.map((a: string) => expand(a, env))
  for (const mount of container.volumeMounts) {
    if (mount.name === SA_TOKEN_VOLUME) continue
    const volume = spec.volumes.find((v: any) => v.name === mount.name)
    if (volume.secret === undefined) throw new Error(`volume ${mount.name}: only secret volumes can be laid out here`)
    const secret = await cluster.getSecret(ns, volume.secret.secretName)
    const dir = mkdtempSync(join(helm.dir, 'volume-'))
    for (const item of volume.secret.items) writeFileSync(join(dir, item.path), Buffer.from(secret.data[item.key], 'base64'))
    args = args.map((a) => a.replaceAll(mount.mountPath, dir))
    for (const name of Object.keys(env)) env[name] = env[name]!.replaceAll(mount.mountPath, dir)
  }
  const tokenSource = spec.volumes.find((v: any) => v.name === SA_TOKEN_VOLUME).projected.sources[0].serviceAccountToken
  if (tokenSource.audience !== undefined) throw new Error('a token audience cannot be minted here')
  return { args, env, serviceAccount: spec.serviceAccountName, expirationSeconds: tokenSource.expirationSeconds }
}

t.test("the rendered sidecar, run with a token of the chart's ServiceAccount, serves the secret; the token gets nothing else", async (t) => {
  const spec = podSpecOf(await cluster.admin.call('GET', apiPath('Deployment', 'article-kube-secret-proxy')))
  const { args, env, serviceAccount, expirationSeconds } = await runnable(spec)
  t.same(args, ['--secret=mysecretdamaggio', '--mode=watch'])
  t.equal(env.KSP_METRICS_LISTEN, '127.0.0.1:9642', 'the pod-IP metrics address, on the loopback "node"')
  t.equal(serviceAccount, 'danigian')
  const token = await cluster.mintToken(ns, serviceAccount, { expirationSeconds })
  // Sidecar.start adds --listen and --metrics-listen on free loopback ports; flags win over the KSP_* env.
  const sidecar = await Sidecar.start(cluster, { namespace: ns, serviceAccount, args, env, token })
  t.teardown(() => sidecar.stop())

  const read = await sidecar.get('/v1/secrets/mysecretdamaggio')
  t.equal(read.status, 200)
  t.equal(decode(read.json().data.secretKey), 'Ciao! I am THE secret\n')
  t.equal((await sidecar.get('/v1/secrets/someone-elses-secret')).status, 404, 'not configured: the sidecar never asks')

  const direct = cluster.as(token)
  t.teardown(() => direct.close())
  const other = await direct.send('GET', `/api/v1/namespaces/${ns}/secrets/someone-elses-secret`)
  t.equal(other.status, 403, 'the token may not read another secret')
  t.equal((await direct.send('GET', `/api/v1/namespaces/${ns}/secrets`)).status, 403, 'nor list the namespace')
  t.equal((await direct.send('GET', `/api/v1/namespaces/${ns}/secrets/mysecretdamaggio`)).status, 200)

  const secretRequests = (await cluster.requestsBy(`system:serviceaccount:${ns}:${serviceAccount}`)).filter((r) => r.path.includes('/secrets'))
  t.ok(secretRequests.some((r) => r.verb === 'watch' && r.code === 200), 'the sidecar watches (the Role allows it)')
  t.same(secretRequests.filter((r) => r.code === 403).map((r) => r.path), [`/api/v1/namespaces/${ns}/secrets/someone-elses-secret`, `/api/v1/namespaces/${ns}/secrets`],
    'the only refusals are the direct requests above')
})

t.test('with the chart-generated bearer token, the sidecar refuses a request without it', async (t) => {
  const spec = podSpecOf(await cluster.admin.call('GET', apiPath('Deployment', 'guarded-kube-secret-proxy')))
  const { args, env, serviceAccount, expirationSeconds } = await runnable(spec)
  t.equal(serviceAccount, 'guarded-kube-secret-proxy')
  const sidecar = await Sidecar.start(cluster, { namespace: ns, serviceAccount, args, env, token: await cluster.mintToken(ns, serviceAccount, { expirationSeconds }) })
  t.teardown(() => sidecar.stop())
  const bearer = decode((await cluster.getSecret(ns, 'guarded-kube-secret-proxy-auth-token')).data.token)
  t.equal((await sidecar.get('/v1/secrets/mysecretdamaggio')).status, 401)
  const read = await sidecar.get('/v1/secrets/mysecretdamaggio', { authorization: `Bearer ${bearer}` })
  t.equal(read.status, 200)
  t.equal(decode(read.json().data.secretKey), 'Ciao! I am THE secret\n')
})

t.test("the chart's helm test (kube-secret-proxy check as the ServiceAccount) passes against the installed RBAC", async (t) => {
  const hooks = parseManifests((await helm.run(['get', 'hooks', 'article', '--namespace', ns, ...kube])).stdout)
  const pod = one(hooks, 'Pod')
  const token = await cluster.mintToken(ns, pod.spec.serviceAccountName)
  const sa = cluster.podServiceAccount(ns, token)
  const result = await promisify(execFile)(process.execPath, [MAIN, ...pod.spec.containers[0].args, `--service-account-dir=${sa.dir}`], {
    env: { PATH: process.env.PATH ?? '', ...sa.env }
  })
  t.match(result.stdout, new RegExp(`^ok +get, list, watch secret ${ns}/mysecretdamaggio$`, 'm'), 'exit 0, all verbs granted')
  t.notMatch(result.stdout, /WARNING|MISSING/, 'and nothing beyond them')
})
