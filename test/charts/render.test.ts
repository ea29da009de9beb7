// The charts as helm renders them: lint --strict and template for every
// ci/*-values.yaml and the fixture chart, then what a reviewer would check by
// eye: the ServiceAccount token reaches only the sidecar, the Role names
// exactly the listed secrets, secure defaults, native sidecar, optional
// objects off by default, every value documented, bad values refused.
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Helm, APP_CHART, FIXTURE_CHART, LIBRARY_CHART, ROOT, one, podSpecOf, sidecarOf, containersOf, SA_TOKEN_VOLUME, SA_DIR } from './helm.ts'

const helm = await Helm.prepare()
t.teardown(() => helm.cleanup())

/** What every render must hold, whatever the values: the security and wiring invariants. */
function checkPod (t: Test, spec: any, expect: { serviceAccount: string, native: boolean, appContainers: string[] }): void {
  t.equal(spec.automountServiceAccountToken, false, 'no automounted token in the pod')
  t.equal(spec.serviceAccountName, expect.serviceAccount)
  const { container: sidecar, native } = sidecarOf(spec)
  t.equal(native, expect.native, expect.native ? 'the sidecar is an init container' : 'the sidecar is a plain container')
  t.equal(sidecar.restartPolicy, expect.native ? 'Always' : undefined, 'restartPolicy: Always only on a native sidecar')

  const tokenVolume = spec.volumes.find((v: any) => v.name === SA_TOKEN_VOLUME)
  t.same(tokenVolume.projected.sources.map((s: any) => Object.keys(s)[0]), ['serviceAccountToken', 'configMap', 'downwardAPI'])
  t.match(tokenVolume.projected.sources[0].serviceAccountToken, { path: 'token', expirationSeconds: Number })
  t.same(tokenVolume.projected.sources[1].configMap, { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] })
  t.same(tokenVolume.projected.sources[2].downwardAPI.items, [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }])
  for (const c of containersOf(spec)) {
    const mounts = c.volumeMounts ?? []
    if (c === sidecar) {
      t.same(mounts.filter((m: any) => m.name === SA_TOKEN_VOLUME), [{ name: SA_TOKEN_VOLUME, mountPath: SA_DIR, readOnly: true }], 'the sidecar mounts the token')
    } else {
      t.notOk(mounts.some((m: any) => m.name === SA_TOKEN_VOLUME || m.mountPath.startsWith('/var/run/secrets/kubernetes.io')), `container ${c.name} holds no Kubernetes credential`)
    }
    const sc = c.securityContext ?? {}
    t.equal(sc.allowPrivilegeEscalation, false, `${c.name}: no privilege escalation`)
    t.same(sc.capabilities?.drop, ['ALL'], `${c.name}: all capabilities dropped`)
    t.equal(sc.readOnlyRootFilesystem, true, `${c.name}: read-only root filesystem`)
    t.equal(sc.runAsNonRoot ?? spec.securityContext?.runAsNonRoot, true, `${c.name}: non-root`)
    t.equal((sc.seccompProfile ?? spec.securityContext?.seccompProfile)?.type, 'RuntimeDefault', `${c.name}: seccomp RuntimeDefault`)
    t.equal(c.resources, undefined, `${c.name}: no default resources`)
  }
  t.same(spec.containers.filter((c: any) => c.name !== 'kube-secret-proxy').map((c: any) => c.name), expect.appContainers)

  // Metrics on the pod IP, probes there, the secrets API on loopback.
  const env = Object.fromEntries(sidecar.env.map((e: any) => [e.name, e]))
  t.same(env.POD_IP.valueFrom, { fieldRef: { fieldPath: 'status.podIP' } })
  t.equal(env.KSP_METRICS_LISTEN.value, '$(POD_IP):9642')
  t.match(env.KSP_LISTEN.value, /^127\.0\.0\.1:\d+$/)
  t.same(sidecar.ports, [{ name: 'ksp-metrics', containerPort: 9642, protocol: 'TCP' }])
  t.same(sidecar.startupProbe.httpGet, { path: '/readyz', port: 'ksp-metrics' })
  t.same(sidecar.readinessProbe.httpGet, { path: '/readyz', port: 'ksp-metrics' })
  t.same(sidecar.livenessProbe.httpGet, { path: '/livez', port: 'ksp-metrics' })
}

/**
 * Roles by namespace (a namespace-wide dynamic-secrets Role as "dynamic:<namespace>"):
 * resourceNames and verbs; and each RoleBinding binds its Role to the ServiceAccount.
 */
function rolesOf (t: Test, docs: any[], serviceAccount: string, namespace: string): Record<string, { names: string[], verbs: string[] }> {
  t.notOk(docs.some((d) => d.kind === 'ClusterRole' || d.kind === 'ClusterRoleBinding'), 'no cluster-wide RBAC')
  const roles: Record<string, { names: string[], verbs: string[] }> = {}
  for (const role of docs.filter((d) => d.kind === 'Role')) {
    t.equal(role.rules.length, 1)
    t.same(role.rules[0].apiGroups, [''])
    t.same(role.rules[0].resources, ['secrets'])
    const names = role.rules[0].resourceNames
    roles[names === undefined ? `dynamic:${role.metadata.namespace}` : role.metadata.namespace] = { names, verbs: role.rules[0].verbs }
    const binding = one(docs.filter((d) => d.metadata.namespace === role.metadata.namespace), 'RoleBinding', role.metadata.name)
    t.same(binding.roleRef, { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.metadata.name })
    t.same(binding.subjects, [{ kind: 'ServiceAccount', name: serviceAccount, namespace }])
  }
  return roles
}

const OPTIONAL_KINDS = ['ServiceMonitor', 'PodMonitor', 'PrometheusRule', 'NetworkPolicy', 'Service']

t.test('helm lint --strict passes for every ci/*-values.yaml, the fixture chart and the library', async (t) => {
  const cases = helm.ciValues()
  t.ok(cases.length >= 7, `ci cases: ${cases.join(', ')}`)
  for (const values of cases) {
    const lint = await helm.run(['lint', '--strict', APP_CHART, '--values', values])
    t.match(lint.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/, `lint ${values}`)
    t.notMatch(lint.stdout, /\[(WARNING|ERROR)\]/)
  }
  t.match((await helm.run(['lint', '--strict', FIXTURE_CHART])).stdout, /0 chart\(s\) failed/)
  t.match((await helm.run(['lint', '--strict', LIBRARY_CHART])).stdout, /0 chart\(s\) failed/)
  const refused = await helm.run(['template', 'r1', LIBRARY_CHART], { allowFailure: true })
  t.not(refused.code, 0, 'helm template refuses a library chart (hence the fixture)')
})

t.test("defaults: the article's example, least privilege, secure, nothing optional", async (t) => {
  const docs = await helm.template(APP_CHART)
  t.same(docs.map((d) => d.kind).sort(), ['Deployment', 'Pod', 'Role', 'RoleBinding', 'ServiceAccount'])
  const sa = one(docs, 'ServiceAccount')
  t.equal(sa.metadata.name, 'danigian')
  t.equal(sa.automountServiceAccountToken, false)
  t.same(rolesOf(t, docs, 'danigian', 'ns1'), { ns1: { names: ['mysecretdamaggio'], verbs: ['get', 'list', 'watch'] } })
  const spec = podSpecOf(one(docs, 'Deployment'))
  checkPod(t, spec, { serviceAccount: 'danigian', native: true, appContainers: ['app'] })
  const { container } = sidecarOf(spec)
  t.same(container.args, ['--secret=mysecretdamaggio', '--mode=watch'])
  t.equal(container.image, 'kube-secret-proxy:0.1.0')
  const app = spec.containers[0]
  t.same(app.env, [{ name: 'KUBE_SECRET_PROXY_URL', value: 'http://127.0.0.1:8642' }])
  t.equal(app.volumeMounts, undefined, 'the app mounts nothing by default')
  for (const kind of OPTIONAL_KINDS) t.notOk(docs.some((d) => d.kind === kind), `no ${kind} by default`)

  // The library's default image tag is the sidecar version (package.json) and both charts' appVersion.
  const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version
  for (const chart of [APP_CHART, LIBRARY_CHART]) t.match(readFileSync(join(ROOT, chart, 'Chart.yaml'), 'utf8'), `appVersion: "${version}"`)

  // templates/tests: `kube-secret-proxy check` as the chart's ServiceAccount, with the sidecar's secrets and mode.
  const check = one(docs, 'Pod')
  t.equal(check.metadata.annotations['helm.sh/hook'], 'test')
  t.equal(check.spec.restartPolicy, 'Never')
  t.same(check.spec.containers[0].args, ['check', '--secret=mysecretdamaggio', '--mode=watch'])
  t.equal(check.spec.serviceAccountName, 'danigian')
  t.equal(check.spec.automountServiceAccountToken, false)
})

t.test('poll mode: the Role grants get only, on the listed names without ?optional', async (t) => {
  const docs = await helm.template(APP_CHART, { values: [`${APP_CHART}/ci/poll-values.yaml`] })
  t.same(rolesOf(t, docs, 'danigian', 'ns1'), { ns1: { names: ['mysecretdamaggio', 'optional-extra'], verbs: ['get'] } })
  const { container } = sidecarOf(podSpecOf(one(docs, 'Deployment')))
  t.same(container.args, ['--secret=mysecretdamaggio', '--secret=optional-extra?optional', '--mode=poll'])
})

t.test('native: false makes the sidecar a plain container for clusters before 1.29', async (t) => {
  const docs = await helm.template(APP_CHART, { values: [`${APP_CHART}/ci/plain-container-values.yaml`] })
  const spec = podSpecOf(one(docs, 'Deployment'))
  checkPod(t, spec, { serviceAccount: 'danigian', native: false, appContainers: ['app'] })
  t.equal(spec.initContainers, undefined, 'no init containers')
})

t.test('authToken: a generated bearer token mounted into the app and the sidecar, the ServiceAccount token still only into the sidecar', async (t) => {
  const docs = await helm.template(APP_CHART, { values: [`${APP_CHART}/ci/auth-token-values.yaml`] })
  const secret = one(docs, 'Secret')
  t.equal(secret.metadata.name, 'r1-kube-secret-proxy-auth-token')
  t.match(Buffer.from(secret.data.token, 'base64').toString(), /^[A-Za-z0-9]{48}$/)
  const spec = podSpecOf(one(docs, 'Deployment'))
  checkPod(t, spec, { serviceAccount: 'danigian', native: true, appContainers: ['app'] })
  t.same(spec.volumes.find((v: any) => v.name === 'kube-secret-proxy-auth-token').secret,
    { secretName: 'r1-kube-secret-proxy-auth-token', defaultMode: 0o444, items: [{ key: 'token', path: 'token' }] })
  const { container: sidecar } = sidecarOf(spec)
  t.ok(sidecar.args.includes('--auth-token-file=/var/run/secrets/kube-secret-proxy/token'))
  const app = spec.containers[0]
  t.same(app.volumeMounts, [{ name: 'kube-secret-proxy-auth-token', mountPath: '/var/run/secrets/kube-secret-proxy', readOnly: true }])
  t.same(app.env[1], { name: 'KUBE_SECRET_PROXY_TOKEN_FILE', value: '/var/run/secrets/kube-secret-proxy/token' })
  const check = one(docs, 'Pod')
  t.notOk(check.spec.volumes.some((v: any) => v.name === 'kube-secret-proxy-auth-token'), 'the helm test pod does not mount the bearer token')

  const existing = await helm.template(APP_CHART, { values: [`${APP_CHART}/ci/auth-token-values.yaml`], set: ['sidecar.authToken.existingSecret=mine'] })
  t.notOk(existing.some((d) => d.kind === 'Secret'), 'an existing Secret is used, none generated')
  t.equal(podSpecOf(one(existing, 'Deployment')).volumes[1].secret.secretName, 'mine')
})

t.test('secrets in other namespaces: a Role and RoleBinding in each, bound to the one ServiceAccount', async (t) => {
  const docs = await helm.template(APP_CHART, { values: [`${APP_CHART}/ci/cross-namespace-values.yaml`] })
  t.same(rolesOf(t, docs, 'shop', 'ns1'), {
    ns1: { names: ['api', 'db'], verbs: ['get', 'list', 'watch'] },
    'shared-config': { names: ['ca', 'tls'], verbs: ['get', 'list', 'watch'] }
  })
  const spec = podSpecOf(one(docs, 'Deployment'))
  checkPod(t, spec, { serviceAccount: 'shop', native: true, appContainers: ['app'] })
  t.equal(sidecarOf(spec).container.image, `kube-secret-proxy@sha256:${'0'.repeat(64)}`, 'a digest wins over the tag')
})

t.test('dynamic secrets: a separate namespace-wide Role only with its own explicit value', async (t) => {
  const docs = await helm.template(APP_CHART, { values: [`${APP_CHART}/ci/dynamic-values.yaml`] })
  t.same(rolesOf(t, docs, 'danigian', 'ns1'), {
    ns1: { names: ['mysecretdamaggio'], verbs: ['get', 'list', 'watch'] },
    'dynamic:team-a': { names: undefined, verbs: ['get', 'list', 'watch'] }
  })
  t.equal(one(docs, 'Role', 'r1-kube-secret-proxy-dynamic-secret-reader').metadata.namespace, 'team-a')
  t.same(sidecarOf(podSpecOf(one(docs, 'Deployment'))).container.args, ['--secret=mysecretdamaggio', '--mode=watch', '--allow=team-a/db-*'])
  t.same(one(docs, 'Pod').spec.containers[0].args, ['check', '--secret=mysecretdamaggio', '--mode=watch', '--allow=team-a/db-*'], 'helm test checks the dynamic grant too')
})

t.test('monitoring: ServiceMonitor with its Service, PodMonitor, PrometheusRule, NetworkPolicy', async (t) => {
  const docs = await helm.template(APP_CHART, { values: [`${APP_CHART}/ci/monitoring-values.yaml`] })
  const service = one(docs, 'Service')
  t.equal(service.spec.clusterIP, 'None')
  t.same(service.spec.ports, [{ name: 'metrics', port: 9642, targetPort: 'ksp-metrics', protocol: 'TCP' }])
  const serviceMonitor = one(docs, 'ServiceMonitor')
  t.equal(serviceMonitor.metadata.labels.release, 'prometheus')
  t.same(serviceMonitor.spec.selector.matchLabels, { 'app.kubernetes.io/name': 'kube-secret-proxy', 'app.kubernetes.io/instance': 'r1', 'app.kubernetes.io/component': 'metrics' })
  t.match(service.metadata.labels, serviceMonitor.spec.selector.matchLabels, 'selects the metrics Service')
  t.match(serviceMonitor.spec.endpoints, [{ port: 'metrics', path: '/metrics', interval: '30s' }])
  t.match(one(docs, 'PodMonitor').spec.podMetricsEndpoints, [{ port: 'ksp-metrics', path: '/metrics' }])

  const rule = one(docs, 'PrometheusRule')
  const alerts = Object.fromEntries(rule.spec.groups[0].rules.map((r: any) => [r.alert, r]))
  t.same(Object.keys(alerts), ['KubeSecretProxySecretStale', 'KubeSecretProxyWatchFailing', 'KubeSecretProxySecretForbidden'])
  t.equal(alerts.KubeSecretProxySecretStale.expr, 'kube_secret_proxy_secret_stale == 1')
  t.equal(alerts.KubeSecretProxySecretForbidden.expr, 'kube_secret_proxy_secret_forbidden == 1')
  t.equal(alerts.KubeSecretProxyWatchFailing.expr, 'sum by (namespace, pod) (rate(kube_secret_proxy_watch_restarts_total{reason!="timeout"}[10m])) * 60 > 0.5')
  t.match(alerts.KubeSecretProxySecretStale.annotations.description, '{{ $labels.secret }}', 'Prometheus templates survive Helm')
  t.match(alerts.KubeSecretProxyWatchFailing.annotations.description, '{{ $value | printf "%.2g" }}')

  const policy = one(docs, 'NetworkPolicy')
  t.same(policy.spec.podSelector.matchLabels, one(docs, 'Deployment').spec.selector.matchLabels)
  t.same(policy.spec.policyTypes, ['Ingress'])
  t.same(policy.spec.ingress, [
    { ports: [{ port: 'ksp-metrics', protocol: 'TCP' }], from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }] },
    { ports: [{ port: 3000, protocol: 'TCP' }] }
  ])
})

t.test('the fixture chart: the library adds the sidecar to a Deployment, a Job and a CronJob', async (t) => {
  for (const native of [true, false]) {
    const docs = await helm.template(FIXTURE_CHART, { release: 'demo', set: native ? [] : ['sidecar.native=false'] })
    t.same(rolesOf(t, docs, 'demo', 'ns1'), { ns1: { names: ['api', 'db'], verbs: ['get', 'list', 'watch'] } })
    t.equal(one(docs, 'ServiceAccount').metadata.name, 'demo', 'the library names things after the release by default')
    for (const kind of ['Deployment', 'Job', 'CronJob']) {
      const spec = podSpecOf(one(docs, kind))
      t.test(`${kind}, native ${native}`, async (t) => {
        checkPod(t, spec, { serviceAccount: 'demo', native, appContainers: ['app'] })
        t.same(sidecarOf(spec).container.args, ['--secret=db', '--secret=api?optional', '--mode=watch'])
        if (kind !== 'Deployment') t.ok(['Never', 'OnFailure'].includes(spec.restartPolicy), 'a Job pod that can finish')
      })
    }
  }
})

t.test('bad values are refused with a message naming the value', async (t) => {
  const cases: Array<[string, string[], RegExp]> = [
    [APP_CHART, ['sidecar.listen=0.0.0.0:8642'], /\/sidecar\/listen/],
    [APP_CHART, ['sidecar.secrets[0]=Not_A_Name'], /\/sidecar\/secrets\/0/],
    [APP_CHART, ['sidecar.mode=stream'], /\/sidecar\/mode/],
    [APP_CHART, ['sidecar.extraArgs[0]=--allow=ns/*'], /\/sidecar\/extraArgs\/0/],
    [APP_CHART, ['sidecra.mode=poll'], /additional properties 'sidecra' not allowed/],
    // The fixture has no schema: the library's own checks speak.
    [FIXTURE_CHART, ['sidecar.secrets=null'], /sidecar\.secrets is empty/],
    [FIXTURE_CHART, ['sidecar.mode=stream'], /sidecar\.mode "stream" is not watch, poll or auto/],
    [FIXTURE_CHART, ['sidecar.secrets[0]=a/b/c'], /"a\/b\/c" is not \[namespace\/\]name\[\?optional\]/],
    [APP_CHART, ['sidecar.dynamic.allow[0]=team-a/db-*'], /sidecar\.dynamic\.allow needs sidecar\.dynamic\.namespaceWideSecretRead=true/],
    [APP_CHART, ['sidecar.dynamic.allow[0]=db-*', 'sidecar.dynamic.namespaceWideSecretRead=true'], /\/sidecar\/dynamic\/allow\/0/],
    [FIXTURE_CHART, ['sidecar.extraArgs[0]=--allow=ns/*'], /--allow: use sidecar\.dynamic\.allow/],
    [FIXTURE_CHART, ['sidecar.dynamic.allow[0]=team-a/db-*'], /needs sidecar\.dynamic\.namespaceWideSecretRead=true/],
    [FIXTURE_CHART, ['sidecar.dynamic.allow[0]=db-*', 'sidecar.dynamic.namespaceWideSecretRead=true'], /"db-\*" is not namespace\/pattern/]
  ]
  for (const [chart, set, message] of cases) {
    const args = ['template', 'r1', chart]
    for (const s of set) args.push('--set', s)
    const result = await helm.run(args, { allowFailure: true })
    t.not(result.code, 0, `${chart} --set ${set.join(' ')} is refused`)
    t.match(result.stderr, message)
  }
})

t.test('values.yaml documents every key ("# --" on the key or on the object it belongs to)', async (t) => {
  const lines = readFileSync(join(ROOT, APP_CHART, 'values.yaml'), 'utf8').split('\n')
  const undocumented: string[] = []
  // stack of open keys: indentation, path, documented
  const stack: Array<{ indent: number, path: string, documented: boolean }> = []
  let commentAbove = ''
  let listIndent = -1
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!
    const indent = line.length - line.trimStart().length
    if (line.trim() === '') { commentAbove = ''; continue }
    if (line.trimStart().startsWith('#')) {
      if (commentAbove === '') commentAbove = line.trim()
      continue
    }
    if (listIndent >= 0 && indent > listIndent) continue // inside a list value: a default, not a key
    listIndent = -1
    while (stack.length > 0 && stack.at(-1)!.indent >= indent) stack.pop()
    const match = /^\s*([A-Za-z0-9_.-]+):(.*)$/.exec(line)
    if (match === null) { listIndent = indent - 1; continue }
    const documented = commentAbove.startsWith('# --') || stack.some((s) => s.documented)
    const path = [...stack.map((s) => s.path), match[1]].join('.')
    const next = lines.slice(i + 1).find((l) => l.trim() !== '' && !l.trimStart().startsWith('#')) ?? ''
    const isParent = match[2]!.trim() === '' && next.length - next.trimStart().length > indent
    if (isParent && next.trimStart().startsWith('- ')) listIndent = indent
    if (!documented && !(isParent && !next.trimStart().startsWith('- '))) undocumented.push(path)
    stack.push({ indent, path: match[1]!, documented })
    commentAbove = ''
  }
  t.same(undocumented, [], 'every value has a "# --" comment')
})
