// examples/clients: the shell (curl + SSE), Python (SSE) and Go (long-poll)
// clients, each run against a live sidecar: it prints the key, then the new
// value after a rotation. Under CI=true a missing toolchain fails; elsewhere
// the test says which client it could not run.
import t, { type Test } from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Cluster } from '../cluster/cluster.ts'
import { waitFor } from '../cluster/helpers.ts'
import { Sidecar, grantedNamespace } from '../sidecar/sidecar.ts'
import { requireCommands } from './toolchain.ts'

const CLIENTS = join(import.meta.dirname, '..', '..', 'examples', 'clients')

const cluster = Cluster.shared()
t.teardown(() => cluster.close())
const { ns } = await grantedNamespace(cluster, 'clients', ['db'])
await cluster.createSecret(ns, 'db', { password: 'initial', user: 'app' })
const sidecar = await Sidecar.start(cluster, { namespace: ns, serviceAccount: 'app', args: ['--secret=db'] })
t.teardown(() => sidecar.stop())

const scratch = mkdtempSync(join(tmpdir(), 'ksp-clients-'))
t.teardown(() => rmSync(scratch, { recursive: true, force: true }))

/** Runs a client, checks the first value it prints, rotates the secret, checks it prints the new one. */
async function exercise (t: Test, name: string, command: string, args: string[], kind: 'sse' | 'long-poll'): Promise<void> {
  const before = (await sidecar.get('/v1/secrets/db/keys/password')).body.toString()
  const child = spawn(command, [...args, 'db', 'password'], {
    cwd: CLIENTS,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', KUBE_SECRET_PROXY_URL: `http://127.0.0.1:${sidecar.port}` }
  })
  const lines: string[] = []
  let stderr = ''
  createInterface({ input: child.stdout! }).on('line', (line) => lines.push(line))
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString() })
  const exited = once(child, 'exit')
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    await exited
  })
  const seen = async (value: string): Promise<void> => {
    await waitFor(`${name} to print password=${value}`, () => {
      if (child.exitCode !== null) throw new Error(`${name} exited ${child.exitCode}: ${stderr}`)
      return lines.includes(`password=${value}`) ? true : undefined
    }, 20_000)
  }
  await seen(before)
  t.pass(`${name} read the key`)
  if (kind === 'sse') {
    // The stream is open before the change, so the new value is pushed, not caught up on.
    await waitFor(`${name} to open its stream`, async () => {
      const metrics = (await sidecar.metrics('/metrics')).body.toString()
      return Number(/^kube_secret_proxy_stream_clients\{kind="sse"\} (\d+)/m.exec(metrics)?.[1]) > 0 ? true : undefined
    })
  }
  // (A long-poll sent after the change answers at once: its ETag is already out of date.)
  const next = `${name}-rotated-${Date.now()}`
  await cluster.updateSecret(ns, 'db', { password: next, user: 'app' })
  await seen(next)
  t.pass(`${name} printed the new value after the rotation`)
}

t.test('shell: curl and Server-Sent Events', async (t) => {
  if (!requireCommands(t, 'the shell client (examples/clients/watch.sh)', ['sh', 'curl'])) return
  await exercise(t, 'shell', 'sh', ['watch.sh'], 'sse')
})

t.test('Python: standard library, Server-Sent Events', async (t) => {
  if (!requireCommands(t, 'the Python client (examples/clients/watch.py)', ['python3'])) return
  await exercise(t, 'python', 'python3', ['-u', 'watch.py'], 'sse')
})

t.test('Go: standard library, long-poll', async (t) => {
  if (!requireCommands(t, 'the Go client (examples/clients/go)', ['go'])) return
  const binary = join(scratch, 'kube-secret-proxy-client')
  const build = spawnSync('go', ['build', '-o', binary, '.'], { cwd: join(CLIENTS, 'go'), encoding: 'utf8', env: { ...process.env, GOFLAGS: '-mod=mod', GOTOOLCHAIN: 'local' } })
  t.equal(build.status, 0, `go build: ${build.stderr}`)
  if (build.status !== 0) return
  await exercise(t, 'go', binary, [], 'long-poll')
})
