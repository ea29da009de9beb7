// What a test can do with a running control plane it may not own: fixtures
// (namespaces, ServiceAccounts, RBAC, Secrets, tokens, a pod's ServiceAccount
// directory) and the audit log as the witness of API traffic.
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync, renameSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { KubeApi } from './api.ts'

/** Everything needed to reach a control plane from another process. */
export interface ClusterState {
  dir: string
  server: string
  apiserverPort: number
  etcdPort: number
  etcdPeerPort: number
  kubeconfig: string
  caFile: string
  adminCertFile: string
  adminKeyFile: string
  auditLog: string
}

/** The environment variable with the path of the shared cluster's state file. */
export const SHARED_CLUSTER_ENV = 'KSP_TEST_CLUSTER'

export interface AuditedRequest {
  verb: string
  /** the request URI, with its query */
  path: string
  code: number
  /** ResponseStarted for a watch that is still open, else ResponseComplete */
  stage: string
}

export interface PolicyRule {
  apiGroups?: string[]
  resources: string[]
  resourceNames?: string[]
  verbs: string[]
}

export interface BoundObject {
  kind: 'Secret' | 'Pod'
  name: string
  uid: string
}

export interface PodServiceAccount {
  /** laid out like /var/run/secrets/kubernetes.io/serviceaccount */
  dir: string
  /** KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT, as the kubelet sets them */
  env: { KUBERNETES_SERVICE_HOST: string, KUBERNETES_SERVICE_PORT: string }
  /** Replaces the token the way the kubelet does: a new file renamed into place. */
  writeToken: (token: string) => void
}

export class Cluster {
  readonly state: ClusterState
  readonly admin: KubeApi

  constructor (state: ClusterState) {
    this.state = state
    this.admin = new KubeApi(state.server, {
      ca: readFileSync(state.caFile),
      cert: readFileSync(state.adminCertFile),
      key: readFileSync(state.adminKeyFile)
    })
  }

  /** The shared control plane that test/cluster/with-cluster.ts started for this run. */
  static shared (): Cluster {
    const file = process.env[SHARED_CLUSTER_ENV]
    if (file === undefined) {
      throw new Error(`${SHARED_CLUSTER_ENV} is not set: run tests with \`npm test\` (or node test/cluster/with-cluster.ts tap <file>), which starts the control plane they share`)
    }
    return new Cluster(JSON.parse(readFileSync(file, 'utf8')) as ClusterState)
  }

  get ca (): Buffer {
    return readFileSync(this.state.caFile)
  }

  /** A KubeApi that authenticates with a bearer token. */
  as (token: string): KubeApi {
    return this.admin.withToken(token)
  }

  close (): void {
    this.admin.close()
  }

  /** Creates a namespace with a unique name; tests isolate themselves in one. */
  async namespace (prefix = 'test', labels: Record<string, string> = {}): Promise<string> {
    const name = `${prefix}-${randomUUID().slice(0, 8)}`
    await this.admin.call('POST', '/api/v1/namespaces', { metadata: { name, labels } })
    return name
  }

  async createServiceAccount (namespace: string, name: string): Promise<any> {
    return this.admin.call('POST', `/api/v1/namespaces/${namespace}/serviceaccounts`, { metadata: { name } })
  }

  async createRole (namespace: string, name: string, rules: PolicyRule[]): Promise<any> {
    return this.admin.call('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/roles`, {
      metadata: { name },
      rules: rules.map((rule) => ({ apiGroups: [''], ...rule }))
    })
  }

  async createRoleBinding (namespace: string, name: string, role: string, serviceAccount: string): Promise<any> {
    return this.admin.call('POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/rolebindings`, {
      metadata: { name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role },
      subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace }]
    })
  }

  async deleteRoleBinding (namespace: string, name: string): Promise<any> {
    return this.admin.call('DELETE', `/apis/rbac.authorization.k8s.io/v1/namespaces/${namespace}/rolebindings/${name}`)
  }

  /**
   * ServiceAccount `app` in a namespace (a new one named after `prefix`
   * unless `namespace` is given), bound to a Role with `verbs` on exactly the
   * named secrets: the RBAC a sidecar of that pod needs.
   */
  async appServiceAccount (prefix: string, resourceNames: string[], verbs: string[], namespace?: string): Promise<{ namespace: string, user: string }> {
    const ns = namespace ?? await this.namespace(prefix)
    await this.createServiceAccount(ns, 'app').catch((err: { status?: number }) => {
      if (err.status !== 409) throw err // already made by a test that needed it first
    })
    await this.createRole(ns, 'secret-reader', [{ resources: ['secrets'], resourceNames, verbs }])
    await this.createRoleBinding(ns, 'app-secret-reader', 'secret-reader', 'app')
    return { namespace: ns, user: `system:serviceaccount:${ns}:app` }
  }

  async createSecret (namespace: string, name: string, data: Record<string, string | Buffer>, options: { type?: string, labels?: Record<string, string> } = {}): Promise<any> {
    return this.admin.call('POST', `/api/v1/namespaces/${namespace}/secrets`, {
      metadata: { name, labels: options.labels ?? {} },
      type: options.type ?? 'Opaque',
      data: encodeData(data)
    })
  }

  /** Replaces a secret's data (a rotation). */
  async updateSecret (namespace: string, name: string, data: Record<string, string | Buffer>): Promise<any> {
    return this.admin.call('PATCH', `/api/v1/namespaces/${namespace}/secrets/${name}`,
      { data: encodeData(data) }, 'application/merge-patch+json')
  }

  async labelSecret (namespace: string, name: string, labels: Record<string, string>): Promise<any> {
    return this.admin.call('PATCH', `/api/v1/namespaces/${namespace}/secrets/${name}`,
      { metadata: { labels } }, 'application/merge-patch+json')
  }

  async deleteSecret (namespace: string, name: string): Promise<any> {
    return this.admin.call('DELETE', `/api/v1/namespaces/${namespace}/secrets/${name}`)
  }

  async getSecret (namespace: string, name: string): Promise<any> {
    return this.admin.call('GET', `/api/v1/namespaces/${namespace}/secrets/${name}`)
  }

  /** Mints a ServiceAccount token through the TokenRequest API. */
  async mintToken (namespace: string, serviceAccount: string, options: { expirationSeconds?: number, boundObject?: BoundObject } = {}): Promise<string> {
    const spec: Record<string, unknown> = { expirationSeconds: options.expirationSeconds ?? 3600 }
    if (options.boundObject !== undefined) spec.boundObjectRef = { apiVersion: 'v1', ...options.boundObject }
    const review = await this.admin.call('POST', `/api/v1/namespaces/${namespace}/serviceaccounts/${serviceAccount}/token`, {
      apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec
    })
    return review.status.token as string
  }

  /**
   * Lays out a directory exactly like a pod's
   * /var/run/secrets/kubernetes.io/serviceaccount (token, ca.crt, namespace),
   * so the sidecar can run as it does in a pod.
   */
  podServiceAccount (namespace: string, token: string): PodServiceAccount {
    const dir = mkdtempSync(join(this.state.dir, 'serviceaccount-'))
    writeFileSync(join(dir, 'ca.crt'), this.ca)
    writeFileSync(join(dir, 'namespace'), namespace)
    const writeToken = (value: string): void => {
      const next = join(dir, `.token.${randomUUID()}`)
      writeFileSync(next, value, { mode: 0o600 })
      renameSync(next, join(dir, 'token'))
    }
    writeToken(token)
    return {
      dir,
      env: { KUBERNETES_SERVICE_HOST: '127.0.0.1', KUBERNETES_SERVICE_PORT: String(this.state.apiserverPort) },
      writeToken
    }
  }

  /**
   * The requests `user` sent, from the apiserver's audit log, oldest first.
   * Entries are written after the response, so this first sends a marker
   * request and waits until the marker is in the log.
   */
  async requestsBy (user: string): Promise<AuditedRequest[]> {
    const marker = `/api/v1/namespaces/default/configmaps/audit-marker-${randomUUID()}`
    await this.admin.send('GET', marker)
    const deadline = Date.now() + 10_000
    for (;;) {
      const events = this.#auditEvents()
      if (events.some((event) => event.requestURI === marker)) {
        return pickRequests(events.filter((event) => event.user?.username === user))
      }
      if (Date.now() > deadline) throw new Error(`the audit marker did not reach ${this.state.auditLog} within 10 s`)
      await delay(50)
    }
  }

  #auditEvents (): any[] {
    let text: string
    try {
      text = readFileSync(this.state.auditLog, 'utf8')
    } catch {
      return []
    }
    return text.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line))
  }
}

function encodeData (data: Record<string, string | Buffer>): Record<string, string> {
  return Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value).toString('base64')]))
}

/** One entry per request: its completion, or its start while it is still open. */
function pickRequests (events: any[]): AuditedRequest[] {
  const byId = new Map<string, any>()
  for (const event of events) {
    if (event.stage === 'ResponseComplete' || (event.stage === 'ResponseStarted' && !byId.has(event.auditID))) {
      byId.set(event.auditID, event)
    }
  }
  return [...byId.values()].map((event) => ({
    verb: event.verb,
    path: event.requestURI,
    code: event.responseStatus?.code ?? 0,
    stage: event.stage
  }))
}
