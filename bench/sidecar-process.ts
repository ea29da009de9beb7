// The sidecar as a pod runs it: compiled to JavaScript (the package's bin,
// dist/proxy/main.js), not type-stripped from proxy/main.ts as the tests run
// it; type stripping alone adds ~20 MiB of RSS and start-up CPU. Built once
// per run into bench/.dist; started like test/sidecar/sidecar.ts starts it.
import { spawn, execFileSync } from 'node:child_process'
import { join } from 'node:path'
import type { Cluster } from '../test/cluster/cluster.ts'
import { freePort } from '../test/cluster/control-plane.ts'
import { Sidecar, MAIN, type StartOptions } from '../test/sidecar/sidecar.ts'

const root = join(import.meta.dirname, '..')
export const COMPILED_MAIN = join(import.meta.dirname, '.dist', 'proxy', 'main.js')

/** Compiles proxy/ into bench/.dist (a few seconds). */
export function buildSidecar (): void {
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json'), '--outDir', join(import.meta.dirname, '.dist'), '--sourceMap', 'false'], { cwd: root, stdio: 'inherit' })
}

/** Sidecar.start with the compiled entry point (or `entry`). */
export async function startSidecar (cluster: Cluster, options: StartOptions, entry: string = COMPILED_MAIN): Promise<Sidecar> {
  const token = options.token ?? await cluster.mintToken(options.namespace, options.serviceAccount)
  const pod = cluster.podServiceAccount(options.namespace, token)
  const [port, metricsPort] = [await freePort(), await freePort()]
  const child = spawn(process.execPath, [entry,
    `--service-account-dir=${pod.dir}`,
    `--listen=127.0.0.1:${port}`,
    `--metrics-listen=127.0.0.1:${metricsPort}`,
    ...options.args
  ], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '', ...pod.env, ...options.env }
  })
  const sidecar = new Sidecar(child, port, metricsPort, pod)
  if (options.waitReady ?? true) await sidecar.waitReady()
  return sidecar
}

/** the entry point the tests use, for comparison */
export const SOURCE_MAIN = MAIN
