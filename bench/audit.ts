// The API server's audit log as the witness of what each client cost it: one
// pass over the log (from a byte offset) grouped by user, after a marker
// request proves every earlier request has been written.
import { randomUUID } from 'node:crypto'
import { openSync, readSync, fstatSync, closeSync } from 'node:fs'
import { setTimeout as delay } from 'node:timers/promises'
import type { Cluster } from '../test/cluster/cluster.ts'

export interface UserTraffic {
  /** completed or still-open requests, by verb */
  byVerb: Record<string, number>
  requests: number
  /** watches that have started and not completed */
  openWatches: number
}

/** the audit log's size now: pass it to `trafficSince` to see only later requests */
export function auditOffset (cluster: Cluster): number {
  const fd = openSync(cluster.state.auditLog, 'r')
  try { return fstatSync(fd).size } finally { closeSync(fd) }
}

function readFrom (path: string, offset: number): string {
  const fd = openSync(path, 'r')
  try {
    const size = fstatSync(fd).size
    const buffer = Buffer.alloc(Math.max(0, size - offset))
    let read = 0
    while (read < buffer.length) {
      const n = readSync(fd, buffer, read, buffer.length - read, offset + read)
      if (n === 0) break
      read += n
    }
    return buffer.subarray(0, read).toString('utf8')
  } finally { closeSync(fd) }
}

/** Every user's requests logged after `offset`, once the log has caught up. */
export async function trafficSince (cluster: Cluster, offset: number): Promise<Map<string, UserTraffic>> {
  const marker = `/api/v1/namespaces/default/configmaps/bench-marker-${randomUUID()}`
  await cluster.admin.send('GET', marker)
  const deadline = Date.now() + 20_000
  for (;;) {
    const text = readFrom(cluster.state.auditLog, offset)
    if (text.includes(marker)) return group(text)
    if (Date.now() > deadline) throw new Error('the audit marker did not reach the audit log within 20 s')
    await delay(50)
  }
}

function group (text: string): Map<string, UserTraffic> {
  // auditID → the latest stage seen, per user
  const requests = new Map<string, { user: string, verb: string, stage: string }>()
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    let event: any
    try { event = JSON.parse(line) } catch { continue } // a line cut at the offset
    const user = event.user?.username
    if (typeof user !== 'string') continue
    const known = requests.get(event.auditID)
    if (known === undefined || event.stage === 'ResponseComplete') {
      requests.set(event.auditID, { user, verb: event.verb, stage: event.stage })
    }
  }
  const byUser = new Map<string, UserTraffic>()
  for (const r of requests.values()) {
    let t = byUser.get(r.user)
    if (t === undefined) byUser.set(r.user, t = { byVerb: {}, requests: 0, openWatches: 0 })
    t.requests += 1
    t.byVerb[r.verb] = (t.byVerb[r.verb] ?? 0) + 1
    if (r.verb === 'watch' && r.stage === 'ResponseStarted') t.openWatches += 1
  }
  return byUser
}

export function trafficOf (traffic: Map<string, UserTraffic>, user: string): UserTraffic {
  return traffic.get(user) ?? { byVerb: {}, requests: 0, openWatches: 0 }
}
