// 100 watched secrets share HTTP/2 connections instead of opening a socket
// each: count the TCP connections the source's process holds to the API server.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { Cluster } from '../cluster/cluster.ts'
import { waitFor } from '../cluster/helpers.ts'
import { appWithRole } from './fixtures.ts'

const cluster = Cluster.shared()
t.teardown(() => cluster.close())

/** ESTABLISHED TCP connections from process `pid` to `port`, from /proc. */
function connectionsTo (pid: number, port: number): number {
  const inodes = new Set<string>()
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
      if (match !== null) inodes.add(match[1]!)
    } catch { /* closed meanwhile */ }
  }
  let count = 0
  for (const table of ['tcp', 'tcp6']) {
    let lines: string[]
    try {
      lines = readFileSync(`/proc/${pid}/net/${table}`, 'utf8').trim().split('\n').slice(1)
    } catch {
      continue
    }
    for (const line of lines) {
      const fields = line.trim().split(/\s+/)
      const remotePort = Number.parseInt(fields[2]?.split(':')[1] ?? '', 16)
      // state 01 is ESTABLISHED; field 9 is the socket's inode
      if (remotePort === port && fields[3] === '01' && inodes.has(fields[9] ?? '')) count += 1
    }
  }
  return count
}

// kube-apiserver allows 100 concurrent streams per HTTP/2 connection by
// default (--http2-max-streams-per-connection); the client keeps 10 of them
// per connection for short requests, so up to 90 watches share one connection
// and 100 need exactly two.
for (const [count, expected] of [[100, 2], [80, 1]] as const) {
  t.test(`${count} watched secrets: one watch each, over ${expected} TCP connection(s)`, async (t) => {
    const names = Array.from({ length: count }, (_, i) => `s${String(i).padStart(3, '0')}`)
    const app = await appWithRole(cluster, 'many', names, ['get', 'list', 'watch'])
    const ns = app.namespace
    await Promise.all(names.map(async (name) => cluster.createSecret(ns, name, { value: name })))

    const child = spawn(process.execPath, [join(import.meta.dirname, 'fixtures', 'watch-many.ts'), JSON.stringify({
      serviceAccountDir: app.pod.dir, host: app.pod.env.KUBERNETES_SERVICE_HOST, port: app.pod.env.KUBERNETES_SERVICE_PORT, namespace: ns, names
    })], { stdio: ['pipe', 'pipe', 'inherit'] })
    const exited = once(child, 'exit')
    t.teardown(async () => {
      child.stdin?.end()
      await exited
    })
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
    t.equal((await lines.next()).value, 'SYNCED')

    const watches = await waitFor(`${count} open watches in the audit log`, async () => {
      const open = (await cluster.requestsBy(app.user)).filter((r) => r.verb === 'watch')
      return open.length >= count ? open : undefined
    }, 20_000, 200)
    const perSecret = new Map<string, number>()
    for (const w of watches) {
      const name = /metadata\.name%3D([a-z0-9-]+)/.exec(w.path)?.[1] ?? '?'
      perSecret.set(name, (perSecret.get(name) ?? 0) + 1)
    }
    t.equal(perSecret.size, count, 'every secret is watched')
    t.ok([...perSecret.values()].every((n) => n === 1), 'one watch each')
    t.ok(watches.every((w) => w.stage === 'ResponseStarted'), 'all still open')

    const measured = connectionsTo(child.pid!, cluster.state.apiserverPort)
    child.stdin!.write('count\n')
    const reported = Number(/^CONNECTIONS (\d+)$/.exec(String((await lines.next()).value))?.[1])
    t.comment(`${count} watched secrets: ${measured} ESTABLISHED TCP connection(s) from the source's process to the API server (the client reports ${reported})`)
    t.equal(measured, expected, 'not one connection per secret')
    t.equal(reported, measured, 'the client counts the same')

    child.stdin!.end()
    const [code] = await exited
    t.equal(code, 0, 'stops cleanly when asked')
  })
}
