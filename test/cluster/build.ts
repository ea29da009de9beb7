// Builds the control-plane binary (etcd + kube-apiserver, see controlplane/main.go)
// once, and skips the build while its inputs are unchanged.
import { createHash } from 'node:crypto'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, renameSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export const sourceDir = join(import.meta.dirname, 'controlplane')
export const binaryPath = join(sourceDir, 'bin', 'controlplane')
const stampPath = `${binaryPath}.stamp`

/** The Kubernetes release the binary is built from, read from go.mod. */
export function kubeVersion (): string {
  const goMod = readFileSync(join(sourceDir, 'go.mod'), 'utf8')
  const match = /^\s*k8s\.io\/kubernetes (v\d+\.\d+\.\d+)\s*$/m.exec(goMod)
  if (match?.[1] === undefined) throw new Error(`${sourceDir}/go.mod requires no k8s.io/kubernetes version`)
  return match[1]
}

function ldflags (version: string): string {
  const [major, minor] = version.slice(1).split('.')
  // Without these, /version reports v0.0.0-master and Helm's kubeVersion checks fail.
  return [
    '-s', '-w',
    `-X k8s.io/component-base/version.gitVersion=${version}`,
    `-X k8s.io/component-base/version.gitMajor=${major}`,
    `-X k8s.io/component-base/version.gitMinor=${minor}`,
    '-X k8s.io/component-base/version.gitTreeState=clean'
  ].join(' ')
}

// Content hashes, not mtimes: a fresh clone gives every file a new mtime.
function inputsDigest (flags: string): string {
  const hash = createHash('sha256')
  hash.update(execFileSync('go', ['version'], { encoding: 'utf8' }))
  hash.update(flags)
  for (const name of readdirSync(sourceDir).sort()) {
    if (name.endsWith('.go') || name === 'go.mod' || name === 'go.sum') {
      hash.update(name).update(readFileSync(join(sourceDir, name)))
    }
  }
  return hash.digest('hex')
}

/** Builds the binary unless an up-to-date one exists; returns its path. */
export function ensureBuilt (log: (line: string) => void = () => {}): string {
  const flags = ldflags(kubeVersion())
  const digest = inputsDigest(flags)
  if (existsSync(binaryPath) && existsSync(stampPath) && readFileSync(stampPath, 'utf8') === digest) {
    return binaryPath
  }
  log(`building the control plane (kube-apiserver ${kubeVersion()} and etcd) into ${binaryPath}; the first build takes several minutes`)
  mkdirSync(join(sourceDir, 'bin'), { recursive: true })
  const partial = `${binaryPath}.${process.pid}.partial`
  const result = spawnSync('go', ['build', '-trimpath', '-buildvcs=false', '-ldflags', flags, '-o', partial, '.'], {
    cwd: sourceDir,
    stdio: ['ignore', 'inherit', 'inherit']
  })
  if (result.status !== 0) {
    throw new Error(`go build of the control plane failed (exit ${result.status ?? result.signal}): see the output above; is Go ${'>='} the version in ${sourceDir}/go.mod installed?`)
  }
  renameSync(partial, binaryPath)
  writeFileSync(stampPath, digest)
  return binaryPath
}

if (import.meta.main) {
  console.log(ensureBuilt(console.log))
}
