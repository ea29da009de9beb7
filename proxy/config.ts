// The only module that reads process.env or argv: parses every setting once,
// reports every problem together, and returns a frozen Config.
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'

export interface SecretRef {
  readonly namespace: string
  readonly name: string
  readonly optional: boolean
}

export type Listen =
  | { readonly kind: 'tcp', readonly host: string, readonly port: number }
  | { readonly kind: 'unix', readonly path: string }

export type Mode = 'auto' | 'watch' | 'poll'
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'

export interface Config {
  readonly command: 'serve' | 'check' | 'help' | 'version'
  readonly secrets: readonly SecretRef[]
  /** the pod's namespace: --namespace, else the ServiceAccount dir's, else the kubeconfig's */
  readonly namespace: string
  readonly credentials:
    | { readonly kind: 'in-cluster', readonly serviceAccountDir: string, readonly host: string, readonly port: string }
    | { readonly kind: 'kubeconfig', readonly path: string }
  readonly listen: Listen
  readonly listenGroup: string | undefined
  readonly metricsListen: Listen
  readonly mode: Mode
  readonly pollIntervalMs: number
  readonly staleAfterMs: number
  readonly recheckIntervalMs: number
  readonly keepPreviousMs: number
  readonly watchTimeoutSeconds: number
  readonly watchSilenceMs: number
  readonly backoffInitialMs: number
  readonly backoffMaxMs: number
  readonly maxClients: number
  readonly sendBufferBytes: number
  readonly pingIntervalMs: number
  readonly maxWaitMs: number
  readonly logLevel: LogLevel
  readonly apiQps: number
  readonly apiBurst: number
  /** the bearer token clients must send, read from --auth-token-file */
  readonly authToken: Buffer | undefined
  readonly allowedHosts: readonly string[]
  readonly allow: readonly string[]
  readonly cacheMaxSecrets: number
  readonly cacheMaxBytes: number
}

type Kind = 'string' | 'list' | 'duration' | 'int' | 'bytes'

interface Setting {
  readonly flag: string
  readonly kind: Kind
  readonly default: string
  readonly help: string
}

/** Every setting: its flag, its env var is KSP_<FLAG_IN_UPPER_SNAKE>. */
export const SETTINGS: readonly Setting[] = [
  { flag: 'secret', kind: 'list', default: '', help: 'a secret to serve, [namespace/]name[?optional]; repeat the flag (env: comma-separated). Namespace defaults to the pod\'s; an optional secret does not hold readiness back' },
  { flag: 'namespace', kind: 'string', default: '', help: 'the pod\'s namespace (default: the ServiceAccount directory\'s namespace file, else the kubeconfig context\'s, else default)' },
  { flag: 'service-account-dir', kind: 'string', default: '/var/run/secrets/kubernetes.io/serviceaccount', help: 'in-cluster credentials: token, ca.crt and namespace; the token is re-read when it rotates. With KUBERNETES_SERVICE_HOST/PORT' },
  { flag: 'kubeconfig', kind: 'string', default: '', help: 'use this kubeconfig instead of in-cluster credentials (for running outside a pod)' },
  { flag: 'listen', kind: 'string', default: '127.0.0.1:8642', help: 'the secrets API: host:port, or unix:/path for a socket (mode 0660, see --listen-group). Keep it on loopback: anything in the pod can reach loopback, nothing outside can' },
  { flag: 'listen-group', kind: 'string', default: '', help: 'group (name or gid) that owns the unix socket' },
  { flag: 'metrics-listen', kind: 'string', default: '127.0.0.1:9642', help: '/metrics, /readyz and /livez: host:port (the Helm chart passes the pod IP so the kubelet and Prometheus reach it); never serves secret values' },
  { flag: 'mode', kind: 'string', default: 'auto', help: 'watch (needs get, list, watch), poll (get only) or auto: watch when RBAC allows it, else poll' },
  { flag: 'poll-interval', kind: 'duration', default: '10s', help: 'how often poll mode GETs each secret' },
  { flag: 'stale-after', kind: 'duration', default: '2m', help: 'mark a secret stale after this long without a successful event, bookmark, list or poll (it is still served, with Kube-Secret-Proxy-Stale: true)' },
  { flag: 'recheck-interval', kind: 'duration', default: '60s', help: 'how often to re-verify access: an open watch outlives a deleted RoleBinding, so a revoked secret is dropped within this interval' },
  { flag: 'keep-previous', kind: 'duration', default: '0', help: 'serve the content before the latest change at ?version=previous for this long (0: off)' },
  { flag: 'watch-timeout', kind: 'duration', default: '5m', help: 'server-side timeout of each watch request; the watch resumes from its last resourceVersion' },
  { flag: 'watch-silence', kind: 'duration', default: '90s', help: 'restart a watch that delivered nothing, not even a bookmark (~60 s), for this long' },
  { flag: 'backoff-initial', kind: 'duration', default: '500ms', help: 'first retry delay after an API error (exponential with jitter)' },
  { flag: 'backoff-max', kind: 'duration', default: '30s', help: 'longest retry delay after API errors' },
  { flag: 'max-clients', kind: 'int', default: '1000', help: 'most WebSocket and SSE clients at once; more are refused (WebSocket close 1013, SSE 503)' },
  { flag: 'send-buffer', kind: 'bytes', default: '1MiB', help: 'per streaming client: a client that falls this far behind is closed (1013) instead of growing memory' },
  { flag: 'ping-interval', kind: 'duration', default: '30s', help: 'WebSocket ping and SSE heartbeat interval' },
  { flag: 'max-wait', kind: 'duration', default: '60s', help: 'longest long-poll (?wait=) a client may ask for' },
  { flag: 'log-level', kind: 'string', default: 'info', help: 'fatal, error, warn, info, debug or trace; no level ever logs a secret value or token' },
  { flag: 'api-qps', kind: 'int', default: '50', help: 'API requests per second (watches excepted)' },
  { flag: 'api-burst', kind: 'int', default: '100', help: 'API request burst above --api-qps' },
  { flag: 'auth-token-file', kind: 'string', default: '', help: 'require "Authorization: Bearer <contents of this file>" on the secrets API' },
  { flag: 'allowed-host', kind: 'list', default: '', help: 'an extra Host header value to accept besides localhost, 127.0.0.1 and [::1] (DNS rebinding guard)' },
  { flag: 'allow', kind: 'list', default: '', help: 'dynamic secrets: also serve secrets matching namespace/pattern* on demand. RBAC has no wildcards, so this needs namespace-wide get, list, watch and the sidecar becomes the only guard' },
  { flag: 'cache-max-secrets', kind: 'int', default: '100', help: 'dynamic secrets kept at most (least recently read evicted)' },
  { flag: 'cache-max-bytes', kind: 'bytes', default: '16MiB', help: 'dynamic secret bytes kept at most' }
]

export const envName = (flag: string): string => `KSP_${flag.toUpperCase().replaceAll('-', '_')}`

/** Thrown with every problem found; main prints it and exits 2. */
export class ConfigError extends Error {
  readonly problems: readonly string[]
  constructor (problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}\nRun kube-secret-proxy --help for every setting.`)
    this.problems = problems
  }
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

export function isNamespaceName (value: string): boolean {
  return value.length <= 63 && DNS1123_LABEL.test(value)
}

export function isSecretName (value: string): boolean {
  return value.length <= 253 && DNS1123_SUBDOMAIN.test(value)
}

export function parseDuration (value: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim())
  if (match === null) return undefined
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] as 'ms' | 's' | 'm' | 'h' ?? 's']
  return Math.round(Number(match[1]) * unit)
}

export function parseBytes (value: string): number | undefined {
  const match = /^(\d+)(B|KiB|MiB|GiB)?$/.exec(value.trim())
  if (match === null) return undefined
  return Number(match[1]) * { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 }[match[2] as 'B' ?? 'B']
}

function parseListen (value: string): Listen | undefined {
  if (value.startsWith('unix:')) {
    const path = value.slice('unix:'.length)
    return path.startsWith('/') ? { kind: 'unix', path } : undefined
  }
  const match = /^(\[[0-9a-fA-F:]+\]|[^:[\]]+):(\d{1,5})$/.exec(value)
  if (match === null) return undefined
  const port = Number(match[2])
  if (port > 65535) return undefined
  return { kind: 'tcp', host: match[1]!.replace(/^\[|\]$/g, ''), port }
}

interface Raw {
  command: string | undefined
  values: Map<string, string[]>
  problems: string[]
}

/** Splits argv into a command and flag values; unknown flags become problems. */
function readArgv (argv: readonly string[]): Raw {
  const known = new Map(SETTINGS.map((s) => [s.flag, s]))
  const values = new Map<string, string[]>()
  const problems: string[] = []
  let command: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--help' || arg === '-h') { command = 'help'; continue }
    if (arg === '--version') { command = command === 'help' ? 'help' : 'version'; continue }
    if (!arg.startsWith('--')) {
      if (command === undefined && (arg === 'check' || arg === 'serve')) command = arg
      else problems.push(`unexpected argument "${arg}": the only commands are serve (default) and check`)
      continue
    }
    const eq = arg.indexOf('=')
    const flag = arg.slice(2, eq === -1 ? undefined : eq)
    if (!known.has(flag)) {
      problems.push(`unknown flag --${flag}: see --help for the settings`)
      if (eq === -1 && argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--')) i++
      continue
    }
    let value: string | undefined = eq === -1 ? argv[++i] : arg.slice(eq + 1)
    if (value === undefined) {
      problems.push(`--${flag} needs a value`)
      value = ''
    }
    values.set(flag, [...(values.get(flag) ?? []), value])
  }
  return { command, values, problems }
}

export function parseConfig (argv: readonly string[], env: NodeJS.ProcessEnv): Config {
  const { command, values, problems } = readArgv(argv)
  // A flag wins over its env var; lists from env are comma-separated.
  const raw = (flag: string): string[] => {
    const fromFlags = values.get(flag)
    if (fromFlags !== undefined) return fromFlags
    const fromEnv = env[envName(flag)]
    const setting = SETTINGS.find((s) => s.flag === flag)!
    if (fromEnv !== undefined && fromEnv !== '') return setting.kind === 'list' ? fromEnv.split(',').map((v) => v.trim()).filter((v) => v !== '') : [fromEnv]
    return setting.kind === 'list' ? [] : [setting.default]
  }
  const str = (flag: string): string => raw(flag).at(-1) ?? ''
  const source = (flag: string): string => values.has(flag) ? `--${flag}` : env[envName(flag)] !== undefined ? envName(flag) : `--${flag}`
  const duration = (flag: string, min = 0): number => {
    const ms = parseDuration(str(flag))
    if (ms === undefined || ms < min) {
      problems.push(`${source(flag)}=${str(flag)} is not a duration${min > 0 ? ` of at least ${min} ms` : ''}: use e.g. 500ms, 30s, 5m, 1h`)
      return 0
    }
    return ms
  }
  const int = (flag: string, min: number): number => {
    const n = Number(str(flag))
    if (!Number.isInteger(n) || n < min) {
      problems.push(`${source(flag)}=${str(flag)} must be a whole number ≥ ${min}`)
      return min
    }
    return n
  }
  const bytes = (flag: string): number => {
    const n = parseBytes(str(flag))
    if (n === undefined || n <= 0) {
      problems.push(`${source(flag)}=${str(flag)} is not a size: use e.g. 65536, 64KiB, 1MiB`)
      return 1
    }
    return n
  }
  const listenOf = (flag: string): Listen => {
    const listen = parseListen(str(flag))
    if (listen === undefined) {
      problems.push(`${source(flag)}=${str(flag)} is not host:port${flag === 'listen' ? ' or unix:/absolute/path' : ''}: e.g. 127.0.0.1:8642`)
      return { kind: 'tcp', host: '127.0.0.1', port: 0 }
    }
    if (listen.kind === 'unix' && flag !== 'listen') problems.push(`${source(flag)} cannot be a unix socket: the kubelet and Prometheus need host:port`)
    return listen
  }

  // Credentials and the pod's namespace.
  const kubeconfig = str('kubeconfig')
  const serviceAccountDir = str('service-account-dir')
  let credentials: Config['credentials']
  let namespace = str('namespace')
  const wantsApi = command !== 'help' && command !== 'version'
  if (kubeconfig !== '') {
    credentials = { kind: 'kubeconfig', path: kubeconfig }
    if (wantsApi) {
      try {
        const text = readFileSync(kubeconfig, 'utf8')
        if (namespace === '') namespace = /^\s+namespace:\s*"?([a-z0-9-]+)"?\s*$/m.exec(text)?.[1] ?? ''
      } catch (err) {
        problems.push(`cannot read --kubeconfig ${kubeconfig} (${(err as NodeJS.ErrnoException).code}): give the path of a readable kubeconfig`)
      }
    }
  } else {
    const host = env.KUBERNETES_SERVICE_HOST ?? ''
    const port = env.KUBERNETES_SERVICE_PORT ?? ''
    credentials = { kind: 'in-cluster', serviceAccountDir, host, port }
    if (wantsApi) {
      if (host === '' || port === '') {
        problems.push('KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: run inside a pod, or pass --kubeconfig')
      }
      for (const file of ['token', 'ca.crt']) {
        try {
          readFileSync(join(serviceAccountDir, file))
        } catch (err) {
          problems.push(`cannot read ${join(serviceAccountDir, file)} (${(err as NodeJS.ErrnoException).code}): mount the ServiceAccount token (automountServiceAccountToken or a projected volume) at --service-account-dir, or pass --kubeconfig`)
        }
      }
      if (namespace === '') {
        try {
          namespace = readFileSync(join(serviceAccountDir, 'namespace'), 'utf8').trim()
        } catch { /* reported below if still unknown */ }
      }
    }
  }
  if (namespace === '') namespace = 'default'
  if (!isNamespaceName(namespace)) problems.push(`namespace "${namespace}" is not a valid namespace name (DNS-1123 label)`)

  const secrets: SecretRef[] = []
  for (const spec of raw('secret')) {
    const match = /^(?:([^/?]+)\/)?([^/?]+)(\?optional)?$/.exec(spec)
    const ns = match?.[1] ?? namespace
    const name = match?.[2] ?? ''
    if (match === null || !isNamespaceName(ns) || !isSecretName(name)) {
      problems.push(`--secret ${JSON.stringify(spec)} is not [namespace/]name[?optional] with a DNS-1123 namespace and secret name, e.g. --secret default/db or --secret db?optional`)
      continue
    }
    if (secrets.some((s) => s.namespace === ns && s.name === name)) continue
    secrets.push({ namespace: ns, name, optional: match[3] !== undefined })
  }
  const allow = raw('allow')
  for (const pattern of allow) {
    if (!/^[a-z0-9-]+\/[a-z0-9.*-]+$/.test(pattern)) problems.push(`--allow ${JSON.stringify(pattern)} is not namespace/pattern, e.g. --allow 'team-a/db-*'`)
  }

  if (wantsApi && raw('secret').length === 0 && allow.length === 0) {
    problems.push('no secret to serve: pass --secret name (repeatable) or set KSP_SECRET=name1,name2')
  }

  const mode = str('mode')
  if (mode !== 'auto' && mode !== 'watch' && mode !== 'poll') problems.push(`${source('mode')}=${mode} must be auto, watch or poll`)
  const logLevel = str('log-level')
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace'].includes(logLevel)) problems.push(`${source('log-level')}=${logLevel} must be fatal, error, warn, info, debug or trace`)

  let authToken: Buffer | undefined
  const authTokenFile = str('auth-token-file')
  if (authTokenFile !== '') {
    try {
      if (!statSync(authTokenFile).isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' })
      authToken = Buffer.from(readFileSync(authTokenFile, 'utf8').trim())
      if (authToken.length === 0) problems.push(`--auth-token-file ${authTokenFile} is empty: write a random token into it`)
    } catch (err) {
      problems.push(`cannot read --auth-token-file ${authTokenFile} (${(err as NodeJS.ErrnoException).code}): give a readable file holding the bearer token`)
    }
  }

  const config: Config = {
    command: (command ?? 'serve') as Config['command'],
    secrets,
    namespace,
    credentials,
    listen: listenOf('listen'),
    listenGroup: str('listen-group') === '' ? undefined : str('listen-group'),
    metricsListen: listenOf('metrics-listen'),
    mode: mode as Mode,
    pollIntervalMs: duration('poll-interval', 100),
    staleAfterMs: duration('stale-after', 100),
    recheckIntervalMs: duration('recheck-interval', 100),
    keepPreviousMs: duration('keep-previous'),
    watchTimeoutSeconds: Math.max(1, Math.round(duration('watch-timeout', 1000) / 1000)),
    watchSilenceMs: duration('watch-silence', 100),
    backoffInitialMs: duration('backoff-initial', 1),
    backoffMaxMs: duration('backoff-max', 1),
    maxClients: int('max-clients', 0),
    sendBufferBytes: bytes('send-buffer'),
    pingIntervalMs: duration('ping-interval', 100),
    maxWaitMs: duration('max-wait', 0),
    logLevel: logLevel as LogLevel,
    apiQps: int('api-qps', 1),
    apiBurst: int('api-burst', 1),
    authToken,
    allowedHosts: raw('allowed-host'),
    allow,
    cacheMaxSecrets: int('cache-max-secrets', 1),
    cacheMaxBytes: bytes('cache-max-bytes')
  }
  if (config.backoffMaxMs < config.backoffInitialMs) problems.push(`--backoff-max (${config.backoffMaxMs} ms) is shorter than --backoff-initial (${config.backoffInitialMs} ms)`)
  if (problems.length > 0) throw new ConfigError(problems)
  return Object.freeze(config)
}

export function helpText (version: string): string {
  const lines = [
    `kube-secret-proxy ${version}: serves the pod's permitted Kubernetes Secrets to the app over localhost.`,
    '',
    'Usage: kube-secret-proxy [serve] [flags]     watch the secrets and serve them',
    '       kube-secret-proxy check [flags]       ask the API server what the ServiceAccount may do and print the Role it needs',
    '',
    'Every flag has an env var KSP_<FLAG_IN_UPPER_SNAKE> (lists comma-separated); a flag wins over its env var.',
    ''
  ]
  for (const s of SETTINGS) {
    lines.push(`  --${s.flag} ${s.kind === 'list' ? '<value> (repeatable)' : `<${s.kind === 'string' ? 'value' : s.kind}>`}`)
    lines.push(`      env ${envName(s.flag)}, default ${s.default === '' ? '(none)' : s.default}`)
    lines.push(`      ${s.help}`)
  }
  lines.push('  --help, --version')
  return lines.join('\n')
}
