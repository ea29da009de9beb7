// Where the API server is and how to prove who we are: in-cluster (the pod's
// ServiceAccount directory, whose token the kubelet rotates) or a kubeconfig.
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'

export interface Credentials {
  /** https://host:port of the API server */
  readonly server: string
  readonly ca: Buffer | undefined
  /** client certificate and key (kubeconfig only) */
  readonly cert: Buffer | undefined
  readonly key: Buffer | undefined
  readonly rejectUnauthorized: boolean
  readonly servername: string | undefined
  /** the namespace the credentials belong to (the pod's, or the kubeconfig context's) */
  readonly namespace: string | undefined
  /** where the credentials come from, for error messages; never the token */
  readonly source: string
  /** the Authorization header value, re-read cheaply when the token file changed */
  authorization: () => Promise<string | undefined>
  /** after a 401: re-read the token at once, whatever the last check said */
  refresh: () => Promise<void>
}

export class CredentialsError extends Error {
  override readonly name = 'CredentialsError'
}

export const DEFAULT_SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

export interface InClusterOptions {
  /** laid out like /var/run/secrets/kubernetes.io/serviceaccount: token, ca.crt, namespace */
  serviceAccountDir: string
  /** the kubelet's KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT, passed in by config */
  env: { KUBERNETES_SERVICE_HOST?: string | undefined, KUBERNETES_SERVICE_PORT?: string | undefined }
  /** how often at most to stat the token file for a rotation (default 1000 ms) */
  tokenCheckIntervalMs?: number
  clock?: () => Date
}

/** Credentials of the pod's ServiceAccount; throws CredentialsError naming every problem and its fix. */
export function inClusterCredentials (options: InClusterOptions): Credentials {
  const dir = options.serviceAccountDir
  const clock = options.clock ?? (() => new Date())
  const checkEveryMs = options.tokenCheckIntervalMs ?? 1000
  const problems: string[] = []
  const host = options.env.KUBERNETES_SERVICE_HOST
  const port = options.env.KUBERNETES_SERVICE_PORT
  if (host === undefined || host === '' || port === undefined || port === '') {
    problems.push('KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: the kubelet sets them in a pod; outside a cluster use --kubeconfig')
  }
  const read = (file: string, what: string): Buffer | undefined => {
    try {
      return readFileSync(join(dir, file))
    } catch (err) {
      problems.push(`cannot read the ${what} ${join(dir, file)} (${(err as NodeJS.ErrnoException).code ?? String(err)}): mount the ServiceAccount token (automountServiceAccountToken: true) or set --service-account-dir`)
      return undefined
    }
  }
  const ca = read('ca.crt', 'CA certificate')
  const namespace = read('namespace', 'namespace file')?.toString('utf8').trim()
  const tokenFile = join(dir, 'token')
  const first = read('token', 'ServiceAccount token')
  if (problems.length > 0) throw new CredentialsError(problems.join('\n'))

  let token = first!.toString('utf8').trim()
  let signature = fileSignature(tokenFile)
  let checkedAt = clock().getTime()

  // A changed inode, size or mtime means the kubelet renamed a new token into
  // place; stat is cheap, so this runs before requests at most every checkEveryMs.
  const reread = (): void => {
    try {
      const next = fileSignature(tokenFile)
      if (next !== signature) {
        token = readFileSync(tokenFile, 'utf8').trim()
        signature = next
      }
    } catch {
      // Mid-rotation the file can be briefly missing: keep the last token.
    }
  }

  const hostForUrl = host!.includes(':') ? `[${host!}]` : host!
  return {
    server: `https://${hostForUrl}:${port!}`,
    ca,
    cert: undefined,
    key: undefined,
    rejectUnauthorized: true,
    servername: undefined,
    namespace,
    source: `the ServiceAccount token in ${tokenFile}`,
    async authorization () {
      const now = clock().getTime()
      if (now - checkedAt >= checkEveryMs) {
        checkedAt = now
        reread()
      }
      return `Bearer ${token}`
    },
    async refresh () {
      checkedAt = clock().getTime()
      signature = ''
      reread()
    }
  }
}

function fileSignature (file: string): string {
  const s = statSync(file)
  return `${s.ino}:${s.size}:${s.mtimeMs}`
}

export interface KubeconfigOptions {
  /** the kubeconfig file */
  kubeconfig: string
  /** a context other than current-context */
  context?: string
  /** overrides the context's namespace */
  namespace?: string
}

/** Credentials from a kubeconfig, for running outside a cluster. */
export async function kubeconfigCredentials (options: KubeconfigOptions): Promise<Credentials> {
  // Loaded only here: client-node costs ~85 MiB of RSS, which a sidecar in a
  // pod (in-cluster credentials) should not pay.
  const { KubeConfig } = await import('@kubernetes/client-node')
  const kc = new KubeConfig()
  try {
    kc.loadFromFile(options.kubeconfig)
  } catch (err) {
    throw new CredentialsError(`cannot load the kubeconfig ${options.kubeconfig}: ${(err as Error).message}: pass a readable kubeconfig with --kubeconfig`)
  }
  if (options.context !== undefined) kc.setCurrentContext(options.context)
  const cluster = kc.getCurrentCluster()
  if (cluster === null) {
    throw new CredentialsError(`the kubeconfig ${options.kubeconfig} has no cluster for context "${kc.getCurrentContext()}": set current-context or pick a context that names a cluster`)
  }
  if (!cluster.server.startsWith('https://')) {
    throw new CredentialsError(`the kubeconfig ${options.kubeconfig} names server ${cluster.server}: only https:// API servers are supported`)
  }

  // client-node knows every way a kubeconfig can authenticate (token, token
  // file, exec plugin, client certificate); ask it again after a 401.
  interface Applied { ca?: Buffer, cert?: Buffer, key?: Buffer, rejectUnauthorized?: boolean, servername?: string, headers?: Record<string, unknown> }
  const apply = async (): Promise<Applied> => {
    const opts: Applied & { agent?: { destroy?: () => void } } = {}
    try {
      await kc.applyToHTTPSOptions(opts as never)
    } catch (err) {
      throw new CredentialsError(`cannot get credentials from the kubeconfig ${options.kubeconfig}: ${(err as Error).message}`)
    }
    opts.agent?.destroy?.()
    return opts
  }
  const toBuffer = (value: unknown): Buffer | undefined => value === undefined || value === null ? undefined : Buffer.from(value as string)
  let applied = await apply()
  const header = (): string | undefined => {
    const value = applied.headers?.Authorization ?? applied.headers?.authorization
    return typeof value === 'string' ? value : undefined
  }
  const contextNamespace = kc.getContextObject(kc.getCurrentContext())?.namespace
  return {
    server: cluster.server.replace(/\/+$/, ''),
    ca: toBuffer(applied.ca),
    cert: toBuffer(applied.cert),
    key: toBuffer(applied.key),
    rejectUnauthorized: applied.rejectUnauthorized ?? true,
    servername: applied.servername,
    namespace: options.namespace ?? contextNamespace,
    source: `user "${kc.getCurrentUser()?.name ?? '?'}" of the kubeconfig ${options.kubeconfig}`,
    async authorization () {
      return header()
    },
    async refresh () {
      applied = await apply()
    }
  }
}

/** What config.ts knows about credentials: resolved into Credentials by loadCredentials. */
export type CredentialsSpec =
  | { readonly kind: 'in-cluster', readonly serviceAccountDir: string, readonly host: string, readonly port: string }
  | { readonly kind: 'kubeconfig', readonly path: string, readonly context?: string }

export async function loadCredentials (spec: CredentialsSpec, tokenCheckIntervalMs?: number): Promise<Credentials> {
  if (spec.kind === 'kubeconfig') {
    return kubeconfigCredentials({ kubeconfig: spec.path, ...(spec.context !== undefined ? { context: spec.context } : {}) })
  }
  return inClusterCredentials({
    serviceAccountDir: spec.serviceAccountDir,
    env: { KUBERNETES_SERVICE_HOST: spec.host, KUBERNETES_SERVICE_PORT: spec.port },
    ...(tokenCheckIntervalMs !== undefined ? { tokenCheckIntervalMs } : {})
  })
}
