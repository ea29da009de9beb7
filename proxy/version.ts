// The sidecar's version: package.json's, found from source (proxy/) and from
// the build (dist/proxy/) alike.
import { readFileSync, existsSync } from 'node:fs'
import { dirname, join } from 'node:path'

function findVersion (): string {
  let dir = import.meta.dirname
  for (;;) {
    const candidate = join(dir, 'package.json')
    if (existsSync(candidate)) {
      const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string, version?: string }
      if (pkg.name === 'kube-secret-proxy' && pkg.version !== undefined) return pkg.version
    }
    const parent = dirname(dir)
    if (parent === dir) return '0.0.0-unknown'
    dir = parent
  }
}

export const version = findVersion()
