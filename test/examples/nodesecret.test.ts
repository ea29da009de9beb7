// examples/nodesecret: the manifests pass the API server's own validation
// (kubectl apply --dry-run=server) and the restricted Pod Security level, and
// the app, run beside a sidecar with the Deployment's args under the
// manifests' RBAC, serves the secret and follows a rotation.
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Cluster } from '../cluster/cluster.ts'
import { binaryPath } from '../cluster/build.ts'
import { freePort } from '../cluster/control-plane.ts'
import { waitFor } from '../cluster/helpers.ts'
import { Sidecar } from '../sidecar/sidecar.ts'
import { APP, MANIFEST_DIR, containerArgs, containerEnv, manifests, podTemplate } from '../../examples/nodesecret/manifests.ts'

const cluster = Cluster.shared()
t.teardown(() => cluster.close())
const kubectl = (args: string[], input?: string): { status: number | null, stdout: string, stderr: string } =>
  spawnSync(binaryPath, ['kubectl', `--kubeconfig=${cluster.state.kubeconfig}`, ...args], { encoding: 'utf8', ...(input === undefined ? {} : { input }) })

t.test('the manifests: the article\'s objects, least privilege, a native sidecar, no token in the app', async (t) => {
  const objects = manifests()
  t.strictSame(objects.map((o) => `${o.kind}/${o.metadata.name}`), [
    'Secret/mysecretdamaggio', 'ServiceAccount/danigian', 'Role/mysecretdanigianreader', 'RoleBinding/secret-reader-danigian', 'Deployment/nodesecret'
  ])
  const role = objects.find((o) => o.kind === 'Role')
  t.strictSame(role.rules, [{ apiGroups: [''], resources: ['secrets'], resourceNames: ['mysecretdamaggio'], verbs: ['get', 'list', 'watch'] }])
  const template = podTemplate()
  t.equal(template.spec.serviceAccountName, 'danigian')
  t.equal(template.spec.automountServiceAccountToken, false)
  const [sidecar] = template.spec.initContainers as any[]
  const [app] = template.spec.containers as any[]
  t.equal(sidecar.restartPolicy, 'Always', 'a native sidecar')
  t.equal(sidecar.startupProbe.httpGet.path, '/readyz')
  t.strictSame(sidecar.volumeMounts.map((m: any) => m.mountPath), ['/var/run/secrets/kubernetes.io/serviceaccount'])
  t.equal(app.volumeMounts, undefined, 'the app container mounts no token')
  const volume = (template.spec.volumes as any[]).find((v) => v.name === sidecar.volumeMounts[0].name)
  t.ok(volume.projected.sources.some((s: any) => s.serviceAccountToken !== undefined), 'a projected ServiceAccount token')
})

t.test('kubectl apply --dry-run=server accepts every manifest', async (t) => {
  // A namespace of its own: the shared cluster's default may already hold the
  // article's objects (created without kubectl), and apply would warn about them.
  const ns = await cluster.namespace('apply')
  const result = kubectl(['apply', '--dry-run=server', '-n', ns, '-f', MANIFEST_DIR])
  t.equal(result.status, 0, result.stderr)
  t.equal(result.stderr, '', 'no warnings')
  t.equal(result.stdout.trim().split('\n').filter((l) => l.endsWith('(server dry run)')).length, 5, 'five objects validated', { stdout: result.stdout })
})

t.test('the pod template meets the restricted Pod Security level', async (t) => {
  const ns = await cluster.namespace('psa', {
    'pod-security.kubernetes.io/enforce': 'restricted',
    'pod-security.kubernetes.io/warn': 'restricted'
  })
  const deployment = kubectl(['apply', '--dry-run=server', '-n', ns, '-f', join(MANIFEST_DIR, '05-deployment.yaml')])
  t.equal(deployment.status, 0, deployment.stderr)
  t.notMatch(deployment.stderr, /would violate PodSecurity/, 'no PodSecurity warning for the Deployment')
  const template = podTemplate()
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'nodesecret', labels: template.metadata.labels }, spec: template.spec }
  const created = kubectl(['create', '--dry-run=server', '-n', ns, '-f', '-'], JSON.stringify(pod))
  t.equal(created.status, 0, `the API server admits the template as a Pod: ${created.stderr}`)
  // The witness that the namespace enforces: the same Pod minus one setting is refused.
  const weaker = structuredClone(pod)
  delete (weaker.spec.initContainers[0] as any).securityContext.allowPrivilegeEscalation
  const refused = kubectl(['create', '--dry-run=server', '-n', ns, '-f', '-'], JSON.stringify(weaker))
  t.not(refused.status, 0)
  t.match(refused.stderr, /violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false/)
})

t.test('the app beside a sidecar: serves the secret, follows a rotation, logs no value', async (t) => {
  const ns = await cluster.namespace('nodesecret')
  // The manifests as they are, but bound in this namespace instead of default.
  const objects = manifests()
  for (const o of objects) if (o.kind === 'RoleBinding') for (const s of o.subjects) s.namespace = ns
  const applied = kubectl(['apply', '-n', ns, '-f', '-'], objects.map((o) => JSON.stringify(o)).join('\n'))
  t.equal(applied.status, 0, applied.stderr)

  const template = podTemplate()
  const sidecarSpec = template.spec.initContainers[0]!
  const sidecar = await Sidecar.start(cluster, {
    namespace: ns,
    serviceAccount: template.spec.serviceAccountName,
    args: containerArgs(sidecarSpec, { 'status.podIP': '127.0.0.1' }).filter((a) => !a.startsWith('--metrics-listen='))
  })
  t.teardown(() => sidecar.stop())

  const port = await freePort()
  const app = spawn(process.execPath, [APP], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '',
      ...containerEnv(template.spec.containers[0]!, {}),
      KUBE_SECRET_PROXY_URL: `http://127.0.0.1:${sidecar.port}`,
      HOST: '127.0.0.1',
      PORT: String(port)
    }
  })
  const lines: any[] = []
  createInterface({ input: app.stdout! }).on('line', (line) => lines.push(JSON.parse(line)))
  let stderr = ''
  app.stderr!.on('data', (c: Buffer) => { stderr += c.toString() })
  const exited = once(app, 'exit')
  t.teardown(async () => {
    if (app.exitCode === null) app.kill('SIGTERM')
    await exited
  })
  const page = async (): Promise<{ status: number, text: string }> => {
    const res = await fetch(`http://127.0.0.1:${port}/`)
    return { status: res.status, text: await res.text() }
  }

  await waitFor('the app to follow updates', () => lines.some((l) => l.msg === 'following updates') ? true : undefined)
  const first = await page()
  t.equal(first.status, 200, stderr)
  t.match(first.text, /^The secret is: Ciao! I am THE secret\n/)

  await cluster.updateSecret(ns, 'mysecretdamaggio', { secretKey: 'rotated by the test' })
  await waitFor('the app to log the update', () => lines.find((l) => l.msg === 'secret updated'))
  t.match((await page()).text, /^The secret is: rotated by the test\n/)

  t.notMatch(JSON.stringify(lines), /Ciao|rotated by the test/, 'the app never logs the value')
  const messages = lines.map((l) => l.msg as string)
  t.ok(messages.indexOf('secret loaded') < messages.indexOf('following updates'), 'one GET at start-up, then the stream')
})
