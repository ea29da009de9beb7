// The machine and the versions a result was measured with.
import { cpus, totalmem, release, loadavg, platform } from 'node:os'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { execFileSync } from 'node:child_process'

const root = join(import.meta.dirname, '..')

function packageVersion (name: string): string {
  try {
    return JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version as string
  } catch {
    return 'unknown'
  }
}

function kubernetesVersion (): string {
  try {
    const goMod = readFileSync(join(root, 'test', 'cluster', 'controlplane', 'go.mod'), 'utf8')
    const k8s = /k8s\.io\/kubernetes (v\S+)/.exec(goMod)?.[1] ?? 'unknown'
    const etcd = /go\.etcd\.io\/etcd\/server\/v3 (v\S+)/.exec(goMod)?.[1] ?? 'unknown'
    return `kube-apiserver ${k8s}, etcd ${etcd}`
  } catch {
    return 'unknown'
  }
}

function gitCommit (): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim()
  } catch {
    return 'unknown'
  }
}

export function environment (): Record<string, unknown> {
  const cpu = cpus()
  return {
    cpu: `${cpu.length} × ${cpu[0]?.model ?? 'unknown'}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30 * 10) / 10,
    os: `${platform()} ${release()}`,
    loadAverageAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
    openFilesLimit: openFilesLimit(),
    node: process.version,
    controlPlane: kubernetesVersion(),
    packages: Object.fromEntries(['fastify', '@fastify/websocket', 'ws', '@kubernetes/client-node', 'autocannon'].map((p) => [p, packageVersion(p)])),
    commit: gitCommit()
  }
}

function openFilesLimit (): string {
  try {
    const limits = readFileSync('/proc/self/limits', 'utf8')
    const match = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limits)
    return match === null ? 'unknown' : `${match[1]} soft / ${match[2]} hard`
  } catch {
    return 'unknown'
  }
}
