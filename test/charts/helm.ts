// The real helm (installed by .ci/install.d/helm.sh) run against copies of
// charts/ and the fixture chart in a temp dir, so tests never write into the
// repository and may run side by side; rendered manifests come back parsed.
import { execFile } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { parseAllDocuments } from 'yaml'

const run = promisify(execFile)
export const ROOT = join(import.meta.dirname, '..', '..')
export const HELM = join(ROOT, '.tools', 'bin', 'helm')
export const APP_CHART = 'charts/kube-secret-proxy'
export const LIBRARY_CHART = 'charts/kube-secret-proxy-sidecar'
export const FIXTURE_CHART = 'test/charts/fixture'

export interface HelmResult { stdout: string, stderr: string, code: number }

export class Helm {
  /** the temp copy of the repository's charts, laid out as in the repository */
  readonly dir: string
  readonly #env: NodeJS.ProcessEnv

  private constructor (dir: string) {
    this.dir = dir
    this.#env = {
      PATH: process.env.PATH ?? '',
      HOME: dir,
      HELM_CONFIG_HOME: join(dir, '.helm', 'config'),
      HELM_CACHE_HOME: join(dir, '.helm', 'cache'),
      HELM_DATA_HOME: join(dir, '.helm', 'data')
    }
  }

  /** Copies the charts to a temp dir and vendors the library into the app and fixture charts. */
  static async prepare (): Promise<Helm> {
    if (!existsSync(HELM)) {
      throw new Error(`helm is not installed at ${HELM}: run \`bash .ci/install.d/helm.sh\` (it builds helm from its Go module, as .ci/run does)`)
    }
    const helm = new Helm(mkdtempSync(join(tmpdir(), 'ksp-charts-')))
    cpSync(join(ROOT, 'charts'), join(helm.dir, 'charts'), { recursive: true, filter: (src) => !/\/charts\/[^/]+\/(charts|Chart\.lock)/.test(src.slice(ROOT.length)) })
    cpSync(join(ROOT, FIXTURE_CHART), join(helm.dir, FIXTURE_CHART), { recursive: true, filter: (src) => !/\/(charts|Chart\.lock)$/.test(src.slice(ROOT.length + FIXTURE_CHART.length)) })
    await helm.run(['dependency', 'update', APP_CHART])
    await helm.run(['dependency', 'update', FIXTURE_CHART])
    return helm
  }

  /** Runs helm in the temp dir; throws with its output unless it exits 0 (or `allowFailure`). */
  async run (args: string[], options: { allowFailure?: boolean } = {}): Promise<HelmResult> {
    try {
      const { stdout, stderr } = await run(HELM, args, { cwd: this.dir, env: this.#env, maxBuffer: 64 * 1024 * 1024 })
      return { stdout, stderr, code: 0 }
    } catch (err) {
      const e = err as { stdout?: string, stderr?: string, code?: number }
      const result = { stdout: e.stdout ?? '', stderr: e.stderr ?? String(err), code: typeof e.code === 'number' ? e.code : -1 }
      if (options.allowFailure === true) return result
      throw new Error(`helm ${args.join(' ')} exited ${result.code}:\n${result.stdout}${result.stderr}`)
    }
  }

  /** `helm template`, parsed: every non-empty document. */
  async template (chart: string, options: { release?: string, namespace?: string, values?: string[], set?: string[] } = {}): Promise<any[]> {
    const args = ['template', options.release ?? 'r1', chart, '--namespace', options.namespace ?? 'ns1']
    for (const file of options.values ?? []) args.push('--values', file)
    for (const set of options.set ?? []) args.push('--set', set)
    return parseManifests((await this.run(args)).stdout)
  }

  /** The ci/*-values.yaml files of the app chart, relative to the temp dir. */
  ciValues (): string[] {
    return readdirSync(join(this.dir, APP_CHART, 'ci')).filter((f) => f.endsWith('-values.yaml')).sort().map((f) => `${APP_CHART}/ci/${f}`)
  }

  cleanup (): void {
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/** Parsed as Kubernetes reads YAML (1.1: 0444 is octal). */
export function parseManifests (text: string): any[] {
  return parseAllDocuments(text, { version: '1.1' }).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0]!.message}`)
    return doc.toJS()
  }).filter((obj) => obj !== null && obj !== undefined)
}

/** The one object of `kind` (and `name`, if given); throws when there is not exactly one. */
export function one (docs: any[], kind: string, name?: string): any {
  const found = docs.filter((d) => d.kind === kind && (name === undefined || d.metadata?.name === name))
  if (found.length !== 1) throw new Error(`expected one ${kind}${name === undefined ? '' : ` ${name}`}, found ${found.length}: ${docs.map((d) => `${d.kind}/${d.metadata?.name}`).join(', ')}`)
  return found[0]
}

/** The pod spec of a Deployment, Job, CronJob or Pod. */
export function podSpecOf (obj: any): any {
  if (obj.kind === 'Pod') return obj.spec
  if (obj.kind === 'CronJob') return obj.spec.jobTemplate.spec.template.spec
  return obj.spec.template.spec
}

export const SIDECAR = 'kube-secret-proxy'
export const SA_TOKEN_VOLUME = 'kube-secret-proxy-sa-token'
export const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount'

/** The sidecar container and whether it is a native sidecar (in initContainers). */
export function sidecarOf (spec: any): { container: any, native: boolean } {
  const init = (spec.initContainers ?? []).find((c: any) => c.name === SIDECAR)
  if (init !== undefined) return { container: init, native: true }
  const plain = (spec.containers ?? []).find((c: any) => c.name === SIDECAR)
  if (plain === undefined) throw new Error('no kube-secret-proxy container in the pod spec')
  return { container: plain, native: false }
}

/** Every container of a pod spec, init containers first. */
export function containersOf (spec: any): any[] {
  return [...(spec.initContainers ?? []), ...(spec.containers ?? [])]
}
