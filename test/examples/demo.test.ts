// `npm run demo -- --once`: a private control plane, the article's objects,
// the sidecar and the app; one rotation, a propagation time, a clean exit
// that leaves no API server behind.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { dirname, join } from 'node:path'

const ROOT = join(import.meta.dirname, '..', '..')

t.test('npm run demo -- --once', async (t) => {
  const child = spawn('npm', ['run', '--silent', 'demo', '--', '--once'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` }
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const timer = setTimeout(() => child.kill('SIGINT'), 180_000)
  const [code] = await once(child, 'exit') as [number | null]
  clearTimeout(timer)
  t.equal(code, 0, 'exits 0', { stdout, stderr })

  for (const object of ['secret/mysecretdamaggio', 'serviceaccount/danigian', 'role.rbac.authorization.k8s.io/mysecretdanigianreader',
    'rolebinding.rbac.authorization.k8s.io/secret-reader-danigian', 'deployment.apps/nodesecret']) {
    t.match(stdout, `${object} created`, `kubectl created ${object}`)
  }
  t.match(stdout, /curl -N -H 'Kube-Secret-Proxy: true' http:\/\/127\.0\.0\.1:\d+\/v1\/events/, 'prints what to curl')
  const propagation = /^propagation: (\d+) ms$/m.exec(stdout)
  t.ok(propagation, 'prints the propagation time')
  t.comment(`propagation: ${propagation?.[1]} ms`)
  t.ok(Number(propagation?.[1]) < 5000, 'the app saw the rotation within 5 s')
  t.match(stdout, /the app's page now says: The secret is: Ciao! I am THE secret, rotation 1 at /)
  const appLines = stdout.split('\n').filter((line) => line.includes('[app]'))
  t.ok(appLines.some((line) => line.includes('"secret updated"')), 'the app logged the update')
  t.strictSame(appLines.filter((line) => line.includes('Ciao')), [], 'the app logs versions, never the value')

  const server = /kube-apiserver (https:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1]
  t.ok(server)
  await t.rejects(fetch(`${server}/readyz`), 'the API server is gone')
})
