// `kube-secret-proxy check`: asks the API server what this identity may do
// with each configured secret, prints the Role that grants exactly what is
// needed, warns about anything beyond it, and exits non-zero when something
// is missing.
import type { ApiClient } from './client.ts'
import { mayI, whoAmI, VERBS_FOR, type Verb } from './access-review.ts'
import type { SourceMode } from './secret-source.ts'

export interface CheckOptions {
  api: ApiClient
  secrets: ReadonlyArray<{ readonly namespace: string, readonly name: string, readonly optional?: boolean }>
  mode: SourceMode
  /** the pod's namespace, named in the report's first line */
  namespace?: string
  /** one line of the report, without its newline */
  out: (line: string) => void
  /** the name of the Role and RoleBinding in the printed YAML (default kube-secret-proxy) */
  roleName?: string
  /** --allow patterns (dynamic secrets), `namespace/pattern` */
  allow?: readonly string[]
}

/** Exit codes of runCheck. */
export const CHECK_EXIT = {
  ok: 0,
  /** a permission the mode needs is missing */
  missing: 1,
  /** the API server could not be asked */
  unreachable: 3
} as const

const EXTRA_ON_ONE: readonly Verb[] = ['update', 'patch', 'delete']
const EXTRA_IN_NAMESPACE: readonly Verb[] = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete']
const EXTRA_CLUSTER_WIDE: readonly Verb[] = ['get', 'list', 'watch']

export async function runCheck (options: CheckOptions): Promise<number> {
  const { api, out, mode } = options
  const roleName = options.roleName ?? 'kube-secret-proxy'
  // auto works with get alone (it polls), but the Role to aim for lets it watch.
  const wanted: readonly Verb[] = mode === 'poll' ? VERBS_FOR.poll : VERBS_FOR.watch
  const required: readonly Verb[] = mode === 'auto' ? VERBS_FOR.poll : wanted

  const subject = await whoAmI(api)
  if (subject === undefined) {
    out(`cannot ask the API server who these credentials belong to (SelfSubjectReview failed): check the API server is reachable and the token is valid`)
    return CHECK_EXIT.unreachable
  }
  out(`# kube-secret-proxy check: ${subject.display}${options.namespace !== undefined ? ` in namespace ${options.namespace}` : ''}, mode ${mode}`)

  let missingAny = false
  const namespaces = new Map<string, string[]>()
  try {
    for (const secret of options.secrets) {
      const names = namespaces.get(secret.namespace) ?? []
      names.push(secret.name)
      namespaces.set(secret.namespace, names)
      const allowed = await Promise.all(wanted.map(async (verb) => mayI(api, { verb, namespace: secret.namespace, name: secret.name })))
      const missing = wanted.filter((_, i) => allowed[i] !== true)
      const id = `${secret.namespace}/${secret.name}`
      if (missing.length === 0) {
        out(`ok       ${wanted.join(', ')} secret ${id}`)
        continue
      }
      const fatal = missing.some((verb) => required.includes(verb))
      if (fatal) missingAny = true
      const consequence = fatal ? '' : ` (auto mode will poll it with get; add ${missing.join(', ')} to watch it)`
      out(`${fatal ? 'MISSING' : 'partial'}  ${subject.display} may not ${missing.join(', ')} secret ${id}${consequence}`)
    }

    for (const secret of options.secrets) {
      const extra = await allowedOf(api, EXTRA_ON_ONE, secret.namespace, secret.name)
      if (extra.length > 0) out(`WARNING  ${subject.display} may also ${extra.join(', ')} secret ${secret.namespace}/${secret.name}: the sidecar only reads it; remove those verbs`)
    }
    const namespaceWide = new Map<string, Verb[]>()
    for (const namespace of namespaces.keys()) {
      const extra = await allowedOf(api, EXTRA_IN_NAMESPACE, namespace, undefined)
      namespaceWide.set(namespace, extra)
      if (extra.length > 0 && !(options.allow ?? []).some((p) => p.startsWith(`${namespace}/`))) out(`WARNING  ${subject.display} may ${extra.join(', ')} every secret in namespace ${namespace}, not only the configured ones: restrict its Role with resourceNames`)
    }
    const dynamicNamespaces = new Set((options.allow ?? []).map((pattern) => pattern.slice(0, pattern.indexOf('/'))))
    for (const namespace of dynamicNamespaces) {
      const granted = namespaceWide.get(namespace) ?? await allowedOf(api, EXTRA_IN_NAMESPACE, namespace, undefined)
      const missing = wanted.filter((verb) => !granted.includes(verb))
      if (missing.length > 0) {
        missingAny = true
        out(`MISSING  ${subject.display} may not ${missing.join(', ')} every secret in namespace ${namespace}: --allow needs them (RBAC has no wildcards: grant ${wanted.join(', ')} on secrets without resourceNames)`)
      } else {
        out(`ok       ${wanted.join(', ')} every secret in namespace ${namespace} (for --allow)`)
      }
      out(`NOTE     with --allow, RBAC lets this sidecar read every secret in ${namespace}: the sidecar's --allow patterns are then the only guard of what the app gets`)
    }
    const clusterWide = await allowedOf(api, EXTRA_CLUSTER_WIDE, undefined, undefined)
    if (clusterWide.length > 0) out(`WARNING  ${subject.display} may ${clusterWide.join(', ')} secrets in every namespace (a ClusterRole): bind a Role per namespace instead`)
  } catch (err) {
    out(`cannot ask the API server (SelfSubjectAccessReview): ${err instanceof Error ? err.message : String(err)}`)
    return CHECK_EXIT.unreachable
  }

  out('')
  out(`# The ${namespaces.size === 1 ? 'Role' : 'Roles'} that grant exactly what mode ${mode} needs:`)
  let first = true
  for (const [namespace, names] of namespaces) {
    if (!first) out('---')
    first = false
    for (const line of roleYaml(roleName, namespace, [...new Set(names)].sort(), wanted, subject)) out(line)
  }
  return missingAny ? CHECK_EXIT.missing : CHECK_EXIT.ok
}

async function allowedOf (api: ApiClient, verbs: readonly Verb[], namespace: string | undefined, name: string | undefined): Promise<Verb[]> {
  const allowed = await Promise.all(verbs.map(async (verb) => mayI(api, {
    verb,
    ...(namespace !== undefined ? { namespace } : {}),
    ...(name !== undefined ? { name } : {})
  })))
  return verbs.filter((_, i) => allowed[i] === true)
}

function roleYaml (roleName: string, namespace: string, names: string[], verbs: readonly Verb[], subject: { kind: 'ServiceAccount' | 'User', namespace: string | undefined, name: string }): string[] {
  const list = (items: readonly string[]): string => `[${items.map((item) => JSON.stringify(item)).join(', ')}]`
  const subjectLines = subject.kind === 'ServiceAccount'
    ? ['  - kind: ServiceAccount', `    name: ${subject.name}`, `    namespace: ${subject.namespace ?? namespace}`]
    : ['  - kind: User', `    name: ${JSON.stringify(subject.name)}`, '    apiGroup: rbac.authorization.k8s.io']
  return [
    'apiVersion: rbac.authorization.k8s.io/v1',
    'kind: Role',
    'metadata:',
    `  name: ${roleName}`,
    `  namespace: ${namespace}`,
    'rules:',
    '  - apiGroups: [""]',
    '    resources: ["secrets"]',
    `    resourceNames: ${list(names)}`,
    `    verbs: ${list(verbs)}`,
    '---',
    'apiVersion: rbac.authorization.k8s.io/v1',
    'kind: RoleBinding',
    'metadata:',
    `  name: ${roleName}`,
    `  namespace: ${namespace}`,
    'roleRef:',
    '  apiGroup: rbac.authorization.k8s.io',
    '  kind: Role',
    `  name: ${roleName}`,
    'subjects:',
    ...subjectLines
  ]
}
