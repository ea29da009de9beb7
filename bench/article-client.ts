// The article's pattern: the app holds a ServiceAccount token and asks the API
// server for the secret with client-node's CoreV1Api on every read.
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node'

export interface ArticleTarget {
  server: string
  caFile: string
  token: string
  namespace: string
  name: string
}

export function articleApi (target: ArticleTarget): CoreV1Api {
  const kc = new KubeConfig()
  kc.loadFromOptions({
    clusters: [{ name: 'bench', server: target.server, caFile: target.caFile, skipTLSVerify: false }],
    users: [{ name: 'app', token: target.token }],
    contexts: [{ name: 'bench', cluster: 'bench', user: 'app', namespace: target.namespace }],
    currentContext: 'bench'
  })
  return kc.makeApiClient(CoreV1Api)
}

/** One read as the article does it: GET the secret, take the key's bytes. */
export async function articleRead (api: CoreV1Api, target: ArticleTarget, key: string): Promise<Buffer> {
  const secret = await api.readNamespacedSecret({ name: target.name, namespace: target.namespace })
  const value = secret.data?.[key]
  if (value === undefined) throw new Error(`secret ${target.namespace}/${target.name} has no key ${key}`)
  return Buffer.from(value, 'base64')
}
