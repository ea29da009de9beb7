// The control plane is real: RBAC, watches, bound tokens, restarts and the
// audit log behave as in a cluster.
import t from 'tap'
import { spawn, execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { Cluster } from './cluster.ts'
import { ControlPlane } from './control-plane.ts'
import { waitFor } from './helpers.ts'
import { binaryPath, kubeVersion } from './build.ts'

const cluster = Cluster.shared()
t.teardown(() => cluster.close())

t.test("the article's get-only Role allows exactly one secret, and the audit log shows it", async (t) => {
  await cluster.createSecret('default', 'mysecretdamaggio', { secretKey: 'Ciao! I am THE secret\n' })
  await cluster.createSecret('default', 'someone-elses-secret', { password: 'not yours' })
  await cluster.createServiceAccount('default', 'danigian')
  await cluster.createRole('default', 'mysecretdanigianreader', [
    { resources: ['secrets'], resourceNames: ['mysecretdamaggio'], verbs: ['get'] }
  ])
  await cluster.createRoleBinding('default', 'secret-reader-danigian', 'mysecretdanigianreader', 'danigian')
  const danigian = cluster.as(await cluster.mintToken('default', 'danigian', { expirationSeconds: 600 }))
  t.teardown(() => danigian.close())

  const own = await danigian.send('GET', '/api/v1/namespaces/default/secrets/mysecretdamaggio')
  t.equal(own.status, 200)
  t.equal(Buffer.from(own.body.data.secretKey, 'base64').toString(), 'Ciao! I am THE secret\n')
  t.equal((await danigian.send('GET', '/api/v1/namespaces/default/secrets/someone-elses-secret')).status, 403)
  t.equal((await danigian.send('GET', '/api/v1/namespaces/default/secrets')).status, 403)

  t.same(await cluster.requestsBy('system:serviceaccount:default:danigian'), [
    { verb: 'get', path: '/api/v1/namespaces/default/secrets/mysecretdamaggio', code: 200, stage: 'ResponseComplete' },
    { verb: 'get', path: '/api/v1/namespaces/default/secrets/someone-elses-secret', code: 403, stage: 'ResponseComplete' },
    { verb: 'list', path: '/api/v1/namespaces/default/secrets', code: 403, stage: 'ResponseComplete' }
  ])
})

t.test('a resourceNames Role allows a watch only with the metadata.name field selector', async (t) => {
  const ns = await cluster.namespace('watch')
  await cluster.createSecret(ns, 'db', { password: 'one' })
  await cluster.createServiceAccount(ns, 'app')
  await cluster.createRole(ns, 'db-reader', [{ resources: ['secrets'], resourceNames: ['db'], verbs: ['get', 'list', 'watch'] }])
  await cluster.createRoleBinding(ns, 'app-db-reader', 'db-reader', 'app')
  const app = cluster.as(await cluster.mintToken(ns, 'app'))
  t.teardown(() => app.close())

  const list = await app.call('GET', `/api/v1/namespaces/${ns}/secrets?fieldSelector=metadata.name%3Ddb`)
  const watch = await app.stream(`/api/v1/namespaces/${ns}/secrets?watch=true&fieldSelector=metadata.name%3Ddb&resourceVersion=${list.metadata.resourceVersion}`)
  t.equal(watch.statusCode, 200)
  // Take the iterator now: readline drops lines that arrive before anyone iterates.
  const lines = createInterface({ input: watch })[Symbol.asyncIterator]()
  t.teardown(() => watch.destroy())

  await cluster.updateSecret(ns, 'db', { password: 'two' })
  const event = JSON.parse(String((await lines.next()).value))
  t.equal(event.type, 'MODIFIED')
  t.equal(Buffer.from(event.object.data.password, 'base64').toString(), 'two')
  const unfiltered = await app.send('GET', `/api/v1/namespaces/${ns}/secrets?watch=true`)
  t.equal(unfiltered.status, 403)

  const watches = (await cluster.requestsBy(`system:serviceaccount:${ns}:app`)).filter((r) => r.verb === 'watch')
  t.same(watches.map((r) => r.code), [200, 403])
})

t.test('a token bound to an object stops authenticating once the object is gone', async (t) => {
  const ns = await cluster.namespace('bound')
  await cluster.createServiceAccount(ns, 'app')
  const anchor = await cluster.createSecret(ns, 'anchor', { x: 'y' })
  const bound = cluster.as(await cluster.mintToken(ns, 'app', { expirationSeconds: 600, boundObject: { kind: 'Secret', name: 'anchor', uid: anchor.metadata.uid } }))
  const other = cluster.as(await cluster.mintToken(ns, 'app', { expirationSeconds: 600 }))
  t.teardown(() => { bound.close(); other.close() })
  const whoami = { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }

  t.equal((await bound.send('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', whoami)).status, 201)
  await cluster.deleteSecret(ns, 'anchor')
  // A successful authentication is cached for a few seconds: wait for the 401.
  await waitFor('the bound token to be rejected', async () =>
    (await bound.send('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', whoami)).status === 401 ? true : undefined, 30_000, 250)
  const review = await other.call('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', whoami)
  t.equal(review.status.userInfo.username, `system:serviceaccount:${ns}:app`)
})

t.test('a private control plane: restart keeps data, compaction expires old versions', async (t) => {
  const plane = await ControlPlane.start()
  t.teardown(() => plane.stop())
  const written = await plane.createSecret('default', 'survivor', { value: 'kept' })

  await plane.stopApiserver()
  await t.rejects(plane.admin.send('GET', '/api/v1/namespaces/default/secrets/survivor'), { code: 'ECONNREFUSED' })
  await plane.startApiserver()
  const read = await plane.getSecret('default', 'survivor')
  t.equal(Buffer.from(read.data.value, 'base64').toString(), 'kept')
  t.equal(plane.state.server, `https://127.0.0.1:${plane.state.apiserverPort}`, 'same port')

  await plane.updateSecret('default', 'survivor', { value: 'changed' })
  await plane.compactEtcd()
  const stale = await plane.admin.send('GET', `/api/v1/namespaces/default/secrets?watch=true&fieldSelector=metadata.name%3Dsurvivor&resourceVersion=${written.metadata.resourceVersion}&timeoutSeconds=5`)
  // Outside the watch cache's window the apiserver answers 410 or an ERROR event with 410.
  t.match(JSON.stringify(stale.body) + stale.status, /410|Expired|too old/)
})

t.test('the built-in kubectl reaches the control plane, and /version names the real release', async (t) => {
  const out = execFileSync(binaryPath, ['kubectl', 'get', 'namespace', 'default', '-o', 'jsonpath={.metadata.name}'], {
    env: { ...process.env, KUBECONFIG: cluster.state.kubeconfig }, encoding: 'utf8'
  })
  t.equal(out, 'default')
  const version = await cluster.admin.call('GET', '/version')
  t.equal(version.gitVersion, kubeVersion())
  t.match(version.gitVersion, /^v1\.3[67]\.\d+$/)
})

/** Processes whose command line mentions `dir`. */
function processesUsing (dir: string): number[] {
  return readdirSync('/proc').filter((pid) => /^\d+$/.test(pid)).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir)
    } catch {
      return false
    }
  }).map(Number)
}

for (const signal of ['SIGINT', 'SIGKILL'] as const) {
  t.test(`a test run stopped with ${signal} leaves no process or temp dir behind`, async (t) => {
    const wrapper = join(import.meta.dirname, 'with-cluster.ts')
    const child = spawn(process.execPath, [wrapper, process.execPath, '-e',
      'console.log("STATE=" + process.env.KSP_TEST_CLUSTER + " PID=" + process.pid); setTimeout(() => {}, 120000)'
    ], { stdio: ['pipe', 'pipe', 'inherit'] })
    const [, stateFile, testPid] = await new Promise<RegExpExecArray>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout! })
      lines.on('line', (line) => {
        const match = /^STATE=(\S+) PID=(\d+)$/.exec(line)
        if (match !== null) resolve(match)
      })
      child.on('exit', () => reject(new Error('the child test run exited before it started')))
    }) as unknown as [string, string, string]
    const dir = JSON.parse(readFileSync(stateFile, 'utf8')).dir as string
    t.ok(existsSync(dir))
    t.equal(processesUsing(dir).length, 2, 'etcd and kube-apiserver run')

    const exited = once(child, 'exit')
    child.kill(signal)
    await exited
    if (signal === 'SIGKILL') process.kill(Number(testPid), 'SIGKILL') // its runner is gone; end the stand-in test too
    await waitFor('etcd and kube-apiserver to exit', () => processesUsing(dir).length === 0 ? true : undefined, 30_000)
    await waitFor('the temp dir to be removed', () => existsSync(dir) ? undefined : true, 30_000)
    t.pass('no etcd, no kube-apiserver, no temp dir')
  })
}
