// Asks the API server what this identity may do (SelfSubjectAccessReview,
// SelfSubjectReview) and words a missing permission as its fix. Shared by
// auto mode, the revocation recheck and the `check` command.
import { ApiStatusError, type ApiClient } from './client.ts'

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete'

/** The verbs each mode needs on a secret (watch needs get too: the Role we recommend grants all three). */
export const VERBS_FOR = {
  watch: ['get', 'list', 'watch'],
  poll: ['get']
} as const satisfies Record<string, readonly Verb[]>

export interface AccessQuery {
  verb: Verb
  /** omitted: cluster-wide */
  namespace?: string
  /** omitted: every secret in the namespace */
  name?: string
}

/** May this identity `verb` secrets (one named, or all in a namespace)? Throws on API errors. */
export async function mayI (api: ApiClient, query: AccessQuery): Promise<boolean> {
  const resourceAttributes: Record<string, string> = { verb: query.verb, resource: 'secrets', version: 'v1' }
  if (query.namespace !== undefined) resourceAttributes.namespace = query.namespace
  if (query.name !== undefined) resourceAttributes.name = query.name
  const path = '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews'
  const res = await api.request('POST', path, {
    apiVersion: 'authorization.k8s.io/v1',
    kind: 'SelfSubjectAccessReview',
    spec: { resourceAttributes }
  })
  if (res.status !== 201 && res.status !== 200) throw new ApiStatusError('POST', path, res.status, res.body)
  return res.body?.status?.allowed === true
}

/** The verbs of `verbs` that are denied on one secret, in order. */
export async function missingVerbs (api: ApiClient, namespace: string, name: string, verbs: readonly Verb[]): Promise<Verb[]> {
  const allowed = await Promise.all(verbs.map(async (verb) => mayI(api, { verb, namespace, name })))
  return verbs.filter((_, i) => allowed[i] !== true)
}

export interface Subject {
  kind: 'ServiceAccount' | 'User'
  /** the ServiceAccount's namespace */
  namespace: string | undefined
  name: string
  /** "ServiceAccount default/app" or "User alice" */
  display: string
}

/** Who the API server thinks we are (SelfSubjectReview); undefined when it cannot say. */
export async function whoAmI (api: ApiClient): Promise<Subject | undefined> {
  try {
    const res = await api.request('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', {
      apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview'
    })
    const username = res.body?.status?.userInfo?.username
    if ((res.status !== 201 && res.status !== 200) || typeof username !== 'string') return undefined
    return subjectOf(username)
  } catch {
    return undefined
  }
}

export function subjectOf (username: string): Subject {
  const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(username)
  if (sa !== null) return { kind: 'ServiceAccount', namespace: sa[1], name: sa[2]!, display: `ServiceAccount ${sa[1]!}/${sa[2]!}` }
  return { kind: 'User', namespace: undefined, name: username, display: `User ${username}` }
}

/**
 * The forbidden reason a reader of the sidecar sees: who, which verbs, which
 * secret, and the Role rule that fixes it.
 */
export function forbiddenReason (subject: Subject | undefined, denied: readonly string[], namespace: string, name: string, needed: readonly string[]): string {
  const who = subject?.display ?? 'this ServiceAccount'
  return `${who} may not ${denied.join(', ')} secret ${namespace}/${name}: add ${needed.length === 1 ? 'verb' : 'verbs'} ${needed.join(', ')} with resourceNames [${name}] to its Role`
}

/**
 * Whether the API server says it is ready. A server still starting serves
 * requests before its authorizer has loaded every RoleBinding, so a 403 from
 * it is no evidence of revocation. /readyz is open to every identity.
 */
export async function apiServerReady (api: ApiClient): Promise<boolean> {
  try {
    return (await api.request('GET', '/readyz')).status === 200
  } catch {
    return false
  }
}
