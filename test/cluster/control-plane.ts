// Starts and stops a real etcd and kube-apiserver on loopback, in a fresh
// temp dir, for tests, the demo and `npm run cluster`.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { createServer } from 'node:net'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { ensureBuilt } from './build.ts'
import { Cluster, type ClusterState } from './cluster.ts'
import { waitFor } from './helpers.ts'

const ISSUER = 'https://kubernetes.default.svc.cluster.local'

export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  server.close()
  await once(server, 'close')
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  return address.port
}

const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
# One line per request when it completes, plus one when a watch starts, so an
# open watch shows up while it is still open.
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
`

interface Options {
  /** Where progress lines go; silent by default. */
  log?: (line: string) => void
}

/**
 * A control plane owned by this process. Stop it with stop(); if this process
 * dies first, its children see their stdin close and exit, and etcd removes
 * the temp dir (controlplane/main.go).
 */
export class ControlPlane extends Cluster {
  readonly #binary: string
  readonly #log: (line: string) => void
  #etcd: ChildProcess | undefined
  #apiserver: ChildProcess | undefined
  #stopped = false

  private constructor (state: ClusterState, binary: string, log: (line: string) => void) {
    super(state)
    this.#binary = binary
    this.#log = log
  }

  static async start (options: Options = {}): Promise<ControlPlane> {
    const log = options.log ?? (() => {})
    const binary = ensureBuilt(log)
    const dir = mkdtempSync(join(tmpdir(), 'ksp-cluster-'))
    const plane = new ControlPlane(await layOut(dir, binary), binary, log)
    try {
      await plane.#startEtcd()
      await plane.startApiserver()
      await plane.#waitForDefaultNamespace()
    } catch (err) {
      await plane.stop()
      throw err
    }
    return plane
  }

  get pids (): number[] {
    return [this.#etcd?.pid, this.#apiserver?.pid].filter((pid): pid is number => pid !== undefined)
  }

  #spawn (name: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
    const logFd = openSync(join(this.state.dir, `${name}.log`), 'a')
    // stdin stays a pipe we never write: its EOF tells the child we are gone.
    const child = spawn(this.#binary, [name, ...args], { stdio: ['pipe', logFd, logFd], env: { ...process.env, ...env } })
    closeSync(logFd)
    child.on('exit', (code, signal) => {
      if (!this.#stopped) this.#log(`${name} exited (${code ?? signal}); its log: ${join(this.state.dir, `${name}.log`)}`)
    })
    return child
  }

  async #startEtcd (): Promise<void> {
    const { dir, etcdPort, etcdPeerPort } = this.state
    const client = `http://127.0.0.1:${etcdPort}`
    const peer = `http://127.0.0.1:${etcdPeerPort}`
    this.#etcd = this.#spawn('etcd', [
      '--name=default',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=${client}`, `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`, `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=default=${peer}`,
      '--log-level=warn',
      // test data is thrown away: skip fsync, which dominates etcd latency on slow disks
      '--unsafe-no-fsync=true'
    ], { CONTROLPLANE_REMOVE_ON_ORPHAN: dir })
    await this.#waitFor('etcd', this.#etcd, async () => {
      const res = await fetch(`${client}/health`)
      return res.ok
    })
  }

  /** Starts the apiserver on the port and etcd data it had before. */
  async startApiserver (): Promise<void> {
    const { dir, apiserverPort, etcdPort } = this.state
    const pki = join(dir, 'pki')
    this.#apiserver = this.#spawn('kube-apiserver', [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      '--bind-address=127.0.0.1', '--advertise-address=127.0.0.1', `--secure-port=${apiserverPort}`,
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${join(pki, 'apiserver.crt')}`, `--tls-private-key-file=${join(pki, 'apiserver.key')}`,
      `--client-ca-file=${join(pki, 'ca.crt')}`,
      `--service-account-issuer=${ISSUER}`, `--api-audiences=${ISSUER}`,
      `--service-account-key-file=${join(pki, 'sa.pub')}`, `--service-account-signing-key-file=${join(pki, 'sa.key')}`,
      '--authorization-mode=RBAC',
      // No controller-manager runs, so nothing would create the token the
      // ServiceAccount admission plugin insists on for every Pod.
      '--disable-admission-plugins=ServiceAccount',
      '--service-cluster-ip-range=10.0.0.0/24',
      '--allow-privileged=true',
      `--audit-policy-file=${join(dir, 'audit-policy.yaml')}`, `--audit-log-path=${this.state.auditLog}`,
      '--audit-log-format=json', '--audit-log-mode=blocking', '--audit-log-maxsize=0',
      '--profiling=false', '--goaway-chance=0', '--endpoint-reconciler-type=none'
    ])
    await this.#waitFor('kube-apiserver', this.#apiserver, async () => (await this.admin.send('GET', '/readyz')).status === 200)
  }

  /** Stops the apiserver (etcd keeps its data); connections to it are refused. */
  async stopApiserver (): Promise<void> {
    const child = this.#apiserver
    this.#apiserver = undefined
    if (child !== undefined) await stopChild(child)
  }

  async restartApiserver (): Promise<void> {
    await this.stopApiserver()
    await this.startApiserver()
  }

  /** Compacts etcd up to its current revision, so older resourceVersions are gone (410). */
  async compactEtcd (): Promise<number> {
    const base = `http://127.0.0.1:${this.state.etcdPort}/v3/kv`
    const post = async (path: string, body: unknown): Promise<any> => {
      const res = await fetch(`${base}/${path}`, { method: 'POST', body: JSON.stringify(body) })
      if (!res.ok) throw new Error(`etcd ${path} answered ${res.status}: ${await res.text()}`)
      return res.json()
    }
    const range = await post('range', { key: Buffer.from('/').toString('base64'), limit: 1 })
    const revision = Number(range.header.revision)
    await post('compaction', { revision, physical: true })
    return revision
  }

  async stop (): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    this.admin.close()
    await Promise.all([this.#apiserver, this.#etcd].filter((c) => c !== undefined).map(stopChild))
    rmSync(this.state.dir, { recursive: true, force: true })
  }

  async #waitFor (name: string, child: ChildProcess, ready: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + 120_000
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${name} exited while starting (${child.exitCode ?? child.signalCode}):\n${tail(join(this.state.dir, `${name}.log`))}`)
      }
      try {
        if (await ready()) return
      } catch { /* not listening yet */ }
      await delay(100)
    }
    throw new Error(`${name} was not ready within 120 s:\n${tail(join(this.state.dir, `${name}.log`))}`)
  }

  async #waitForDefaultNamespace (): Promise<void> {
    await waitFor('the default namespace', async () =>
      (await this.admin.send('GET', '/api/v1/namespaces/default')).status === 200 ? true : undefined, 60_000, 100)
  }
}

async function stopChild (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(timer)
}

function tail (path: string): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-30).join('\n')
  } catch {
    return '(no log)'
  }
}

/** Writes PKI, kubeconfig and audit policy into dir and picks the ports. */
async function layOut (dir: string, binary: string): Promise<ClusterState> {
  const pki = join(dir, 'pki')
  mkdirSync(pki)
  execFileSync(binary, ['certs', pki], { stdio: ['ignore', 'inherit', 'inherit'] })
  writeFileSync(join(dir, 'audit-policy.yaml'), AUDIT_POLICY)
  const [apiserverPort, etcdPort, etcdPeerPort] = [await freePort(), await freePort(), await freePort()]
  const server = `https://127.0.0.1:${apiserverPort}`
  const b64 = (name: string): string => readFileSync(join(pki, name)).toString('base64')
  const kubeconfig = join(dir, 'kubeconfig')
  writeFileSync(kubeconfig, `apiVersion: v1
kind: Config
clusters:
  - name: ksp-test
    cluster:
      server: ${server}
      certificate-authority-data: ${b64('ca.crt')}
users:
  - name: admin
    user:
      client-certificate-data: ${b64('admin.crt')}
      client-key-data: ${b64('admin.key')}
contexts:
  - name: ksp-test
    context: { cluster: ksp-test, user: admin, namespace: default }
current-context: ksp-test
`, { mode: 0o600 })
  return {
    dir,
    server,
    apiserverPort,
    etcdPort,
    etcdPeerPort,
    kubeconfig,
    caFile: join(pki, 'ca.crt'),
    adminCertFile: join(pki, 'admin.crt'),
    adminKeyFile: join(pki, 'admin.key'),
    auditLog: join(dir, 'audit.log')
  }
}
