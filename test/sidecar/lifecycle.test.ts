// Streaming limits, graceful shutdown, the unix socket and the bearer token,
// and bad configuration.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, statSync, writeFileSync, chmodSync } from 'node:fs'
import { request } from 'node:http'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { Cluster } from '../cluster/cluster.ts'
import { freePort } from '../cluster/control-plane.ts'
import { Sidecar, grantedNamespace, MAIN, PROXY_HEADER } from './sidecar.ts'
import WebSocket from 'ws'

const cluster = Cluster.shared()
t.teardown(() => cluster.close())

t.test('a slow WebSocket client is closed with 1013; the client limit holds', async (t) => {
  const { ns } = await grantedNamespace(cluster, 'slow', ['big'])
  await cluster.createSecret(ns, 'big', { blob: Buffer.alloc(512 * 1024, 1) })
  const sidecar = await Sidecar.start(cluster, { namespace: ns, serviceAccount: 'app', args: ['--secret=big', '--mode=watch', '--send-buffer=64KiB', '--max-clients=2'] })
  t.teardown(() => sidecar.stop())

  // A client that never reads: its socket is paused, so the kernel buffers
  // fill and the sidecar's own send buffer grows until its bound.
  const slow = new WebSocket(`ws://127.0.0.1:${sidecar.port}/v1/watch`, { headers: PROXY_HEADER })
  await once(slow, 'open')
  ;(slow as any)._socket.pause()
  const closed = once(slow, 'close')
  const healthy = await sidecar.websocket()
  t.teardown(() => { healthy.close(); slow.terminate() })

  const third = await sidecar.websocket()
  t.equal(await third.waitClosed(), 1013, 'a client over --max-clients is closed with 1013')

  let slowClosed = false
  closed.then(() => { slowClosed = true }, () => {})
  for (let i = 0; i < 40 && !slowClosed; i++) {
    await cluster.updateSecret(ns, 'big', { blob: Buffer.alloc(512 * 1024, i + 2) })
    await healthy.next((m) => m.type === 'MODIFIED' && Buffer.from(m.data.blob, 'base64')[0] === i + 2)
  }
  ;(slow as any)._socket.resume()
  const [code] = await closed
  t.equal(code, 1013, 'the slow client was closed with 1013')
  t.match((await sidecar.metrics('/metrics')).body.toString(), /kube_secret_proxy_stream_slow_client_closes_total\{kind="websocket"\} [1-9]/)
  t.equal(healthy.closeCode, undefined, 'the healthy client stays connected')
})

t.test('SIGTERM closes WebSockets with 1001 and exits 0', async (t) => {
  const { ns } = await grantedNamespace(cluster, 'term', ['db'])
  await cluster.createSecret(ns, 'db', { password: 'x' })
  const sidecar = await Sidecar.start(cluster, { namespace: ns, serviceAccount: 'app', args: ['--secret=db'] })
  const ws = await sidecar.websocket()
  await ws.next((m) => m.type === 'SNAPSHOT')
  const [code] = await sidecar.stop('SIGTERM')
  t.equal(await ws.waitClosed(), 1001)
  t.equal(code, 0)
})

t.test('a unix socket is 0660 and the bearer token is required', async (t) => {
  const { ns } = await grantedNamespace(cluster, 'unix', ['db'])
  await cluster.createSecret(ns, 'db', { password: 'via-socket' })
  const dir = mkdtempSync(join(cluster.state.dir, 'socket-'))
  chmodSync(dir, 0o750)
  const socket = join(dir, 'ksp.sock')
  const tokenFile = join(dir, 'bearer')
  writeFileSync(tokenFile, 'a-bearer-token-for-the-app\n')
  const sidecar = await Sidecar.start(cluster, { namespace: ns, serviceAccount: 'app', args: ['--secret=db', `--listen=unix:${socket}`, `--auth-token-file=${tokenFile}`] })
  t.teardown(() => sidecar.stop())
  t.equal(statSync(socket).mode & 0o777, 0o660)
  const get = (headers: Record<string, string>): Promise<number> => new Promise((resolve, reject) => {
    const req = request({ socketPath: socket, path: '/v1/secrets/db/keys/password', headers: { ...PROXY_HEADER, host: 'localhost', ...headers } }, (res) => { res.resume(); resolve(res.statusCode ?? 0) })
    req.on('error', reject)
    req.end()
  })
  t.equal(await get({}), 401, 'no token')
  t.equal(await get({ authorization: 'Bearer wrong' }), 401, 'wrong token')
  t.equal(await get({ authorization: 'Bearer a-bearer-token-for-the-app' }), 200)
})

t.test('bad configuration exits 2 listing every problem; so does a port in use', async (t) => {
  const run = async (args: string[], env: Record<string, string> = {}): Promise<[number | null, string]> => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', ...env } })
    let stderr = ''
    child.stderr.on('data', (c) => { stderr += String(c) })
    const [code] = await once(child, 'exit')
    return [code as number | null, stderr]
  }
  const [code, stderr] = await run(['--secret=Bad_Name', '--frobnicate', '--mode=sometimes', '--service-account-dir=/nonexistent'])
  t.equal(code, 2)
  for (const problem of [/unknown flag --frobnicate/, /--secret "Bad_Name"/, /--mode=sometimes/, /\/nonexistent\/token/, /KUBERNETES_SERVICE_HOST/]) t.match(stderr, problem)

  const busy = createServer()
  busy.listen(0, '127.0.0.1')
  await once(busy, 'listening')
  t.teardown(() => busy.close())
  const busyPort = (busy.address() as { port: number }).port
  const { ns } = await grantedNamespace(cluster, 'busy', ['db'])
  const pod = cluster.podServiceAccount(ns, await cluster.mintToken(ns, 'app'))
  const [busyCode, busyErr] = await run(['--secret=db', `--service-account-dir=${pod.dir}`, `--listen=127.0.0.1:${busyPort}`, `--metrics-listen=127.0.0.1:${await freePort()}`], pod.env)
  t.equal(busyCode, 2)
  t.match(busyErr, new RegExp(`--listen 127.0.0.1:${busyPort}: the address is already in use`))
})
