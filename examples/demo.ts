// `npm run demo`: the article's example, end to end, on this machine. Starts
// a private kube-apiserver + etcd, applies examples/nodesecret/kubernetes/
// with a real kubectl, mints the ServiceAccount's token, runs the sidecar as
// in the pod (the Deployment's args, a ServiceAccount directory) and the
// example app beside it, then rotates the secret and prints how long the app
// took to see the new value. Ctrl-C tears everything down.
// `npm run demo -- --once`: one rotation, then tear down and exit 0.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as delay } from 'node:timers/promises'
import { ControlPlane, freePort } from '../test/cluster/control-plane.ts'
import { binaryPath } from '../test/cluster/build.ts'
import { waitFor } from '../test/cluster/helpers.ts'
import { APP, MANIFEST_DIR, containerArgs, containerEnv, podTemplate } from './nodesecret/manifests.ts'

const MAIN = join(import.meta.dirname, '..', 'proxy', 'main.ts')
const NAMESPACE = 'default'
const SECRET = 'mysecretdamaggio'
const KEY = 'secretKey'
const onceOnly = process.argv.includes('--once')
const everyMs = 10_000

const say = (line = ''): void => { process.stdout.write(`${line}\n`) }
const children: ChildProcess[] = []
let plane: ControlPlane | undefined
let stopping = false

async function teardown (code: number): Promise<never> {
  if (stopping) process.exit(code)
  stopping = true
  for (const child of children.reverse()) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
  }
  await plane?.stop()
  process.exit(code)
}
process.once('SIGINT', () => { say('\nstopping: app, sidecar, control plane'); void teardown(0) })
process.once('SIGTERM', () => { void teardown(0) })

/** Spawns a process; its output lines go to `onLine`; exiting early fails the demo. */
function start (name: string, args: string[], env: Record<string, string>, onLine: (line: string) => void): ChildProcess {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', ...env } })
  children.push(child)
  for (const stream of [child.stdout!, child.stderr!]) createInterface({ input: stream }).on('line', onLine)
  child.on('exit', (code, signal) => {
    if (stopping) return
    process.stderr.write(`the ${name} exited (${code ?? signal})\n`)
    void teardown(1)
  })
  return child
}

try {
  say('== starting a private control plane (kube-apiserver + etcd; the first run builds them, several minutes)')
  plane = await ControlPlane.start({ log: (line) => process.stderr.write(`   ${line}\n`) })
  const kubectl = (...args: string[]): string => execFileSync(binaryPath, ['kubectl', `--kubeconfig=${plane!.state.kubeconfig}`, ...args], { encoding: 'utf8' })
  say(`   kube-apiserver ${plane.state.server}`)

  say(`== kubectl apply -f ${MANIFEST_DIR}`)
  say(kubectl('apply', '-f', MANIFEST_DIR).trimEnd().replace(/^/gm, '   '))
  say('   (no kubelet runs here: the Deployment never starts a pod, so this demo runs its two containers itself)')

  const template = podTemplate()
  const sidecarSpec = template.spec.initContainers.find((c) => c.restartPolicy === 'Always')
  const appSpec = template.spec.containers[0]
  if (sidecarSpec === undefined || appSpec === undefined) throw new Error('the Deployment has no native sidecar or no app container')

  say(`== kubectl create token ${template.spec.serviceAccountName}: the projected token the kubelet would mount into the sidecar`)
  const token = kubectl('create', 'token', template.spec.serviceAccountName, '--duration=1h').trim()
  const pod = plane.podServiceAccount(NAMESPACE, token)

  // The pod's loopback is this machine's: free ports instead of 8642/9642/8080, which may be taken.
  const [listenPort, metricsPort, appPort] = [await freePort(), await freePort(), await freePort()]
  const sidecarArgs = [
    ...containerArgs(sidecarSpec, { 'status.podIP': '127.0.0.1' }).filter((a) => !a.startsWith('--metrics-listen=')),
    `--service-account-dir=${pod.dir}`, `--listen=127.0.0.1:${listenPort}`, `--metrics-listen=127.0.0.1:${metricsPort}`
  ]
  say(`== kube-secret-proxy ${sidecarArgs.join(' ')}`)
  const sidecarLog: string[] = []
  const sidecar = start('sidecar', [MAIN, ...sidecarArgs], pod.env, (line) => sidecarLog.push(line))
  await waitFor('the sidecar to become ready (/readyz)', async () => {
    if (sidecar.exitCode !== null) throw new Error(sidecarLog.join('\n'))
    return (await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).ok ? true : undefined
  }, 30_000, 100)
  say('   ready: the secret is loaded (a native sidecar\'s startup probe would now let the app start)')

  const proxyUrl = `http://127.0.0.1:${listenPort}`
  const appEnv = { ...containerEnv(appSpec, {}), KUBE_SECRET_PROXY_URL: proxyUrl, HOST: '127.0.0.1', PORT: String(appPort) }
  // Every "secret updated" line the app writes, with the time it arrived.
  const updates: Array<{ at: number, version: string }> = []
  let listening = false
  start('app', [APP], appEnv, (line) => {
    let record: { msg?: string, version?: string }
    try { record = JSON.parse(line) } catch { record = {} }
    if (record.msg === 'secret updated') updates.push({ at: performance.now(), version: record.version ?? '' })
    if (record.msg === 'listening') listening = true
    say(`   [app] ${line}`)
  })
  await waitFor('the app to listen', () => listening ? true : undefined, 30_000, 50)
  await waitFor('the app to follow the stream', async () => (await fetch(`http://127.0.0.1:${appPort}/`)).ok ? true : undefined, 30_000, 50)

  const header = "-H 'Kube-Secret-Proxy: true'"
  say(`
== running. Try:
   curl http://127.0.0.1:${appPort}/                                          # the app (open it in a browser too)
   curl ${header} ${proxyUrl}/v1/secrets/${SECRET}/keys/${KEY}   # the sidecar, as the app reads it
   curl -N ${header} ${proxyUrl}/v1/events           # every rotation, as Server-Sent Events
   curl http://127.0.0.1:${metricsPort}/metrics                                # Prometheus metrics
   ${binaryPath} kubectl --kubeconfig=${plane.state.kubeconfig} edit secret ${SECRET}
`)

  for (let rotation = 1; ; rotation++) {
    const value = `Ciao! I am THE secret, rotation ${rotation} at ${new Date().toISOString()}\n`
    const seen = updates.length
    say(`== rotating ${SECRET}: a PATCH through the API server`)
    const started = performance.now()
    await plane.updateSecret(NAMESPACE, SECRET, { [KEY]: value })
    const update = await waitFor('the app to see the new value', () => updates[seen], 30_000, 1)
    say(`propagation: ${Math.round(update.at - started)} ms`)
    const page = await (await fetch(`http://127.0.0.1:${appPort}/`)).text()
    if (!page.includes(value.trimEnd())) throw new Error(`the app's page does not show the new value:\n${page}`)
    say(`   (from the PATCH request to the app's "secret updated" line) the app's page now says: ${page.split('\n')[0]}`)
    if (onceOnly) break
    say(`   next rotation in ${everyMs / 1000} s; Ctrl-C stops everything`)
    await delay(everyMs)
  }
  await teardown(0)
} catch (err) {
  if (!stopping) {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    await teardown(1)
  }
}
