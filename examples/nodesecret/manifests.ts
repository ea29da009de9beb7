// Reads the example's Kubernetes manifests (kubernetes/*.yaml), so the demo
// and the tests run the sidecar and the app with exactly the args and env the
// Deployment gives them, as a kubelet would.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'

export const MANIFEST_DIR = join(import.meta.dirname, 'kubernetes')
export const APP = join(import.meta.dirname, 'server.ts')

export interface Container {
  name: string
  args?: string[]
  env?: Array<{ name: string, value?: string, valueFrom?: { fieldRef?: { fieldPath: string } } }>
  restartPolicy?: string
}

export function manifests (): any[] {
  return readdirSync(MANIFEST_DIR).filter((f) => f.endsWith('.yaml')).sort()
    .flatMap((file) => parseAllDocuments(readFileSync(join(MANIFEST_DIR, file), 'utf8')).map((doc) => doc.toJSON()))
}

export function podTemplate (): { metadata: any, spec: { serviceAccountName: string, initContainers: Container[], containers: Container[], [key: string]: unknown } } {
  const deployment = manifests().find((m) => m.kind === 'Deployment')
  if (deployment === undefined) throw new Error(`no Deployment in ${MANIFEST_DIR}`)
  return deployment.spec.template
}

/** A container's env as the kubelet resolves it; fieldRefs from `fields` (e.g. status.podIP). */
export function containerEnv (container: Container, fields: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {}
  for (const entry of container.env ?? []) {
    const path = entry.valueFrom?.fieldRef?.fieldPath
    const value = entry.value ?? (path === undefined ? undefined : fields[path])
    if (value === undefined) throw new Error(`${container.name}: env ${entry.name} has no value here`)
    env[entry.name] = value
  }
  return env
}

/** A container's args with $(VAR) references expanded from its env, as the kubelet does. */
export function containerArgs (container: Container, fields: Record<string, string>): string[] {
  const env = containerEnv(container, fields)
  return (container.args ?? []).map((arg) => arg.replace(/\$\((\w+)\)/g, (whole, name: string) => env[name] ?? whole))
}
