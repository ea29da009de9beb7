// The limit for propagation: a bare watch on the API server (node:https, one
// JSON object per line), with no client library in between. Nothing can learn
// of a change sooner than the API server's own watch event.
import { performance } from 'node:perf_hooks'
import type { IncomingMessage } from 'node:http'
import type { KubeApi } from '../test/cluster/api.ts'

export interface RawWatch {
  close: () => void
}

/**
 * Watches one secret from `resourceVersion` and calls `onData(data, at)` with
 * the decoded data of every ADDED or MODIFIED event and the time its last
 * byte arrived.
 */
export async function rawWatch (api: KubeApi, namespace: string, name: string, resourceVersion: string,
  onData: (data: Record<string, string>, at: number) => void): Promise<RawWatch> {
  const selector = encodeURIComponent(`metadata.name=${name}`)
  const res: IncomingMessage = await api.stream(`/api/v1/namespaces/${namespace}/secrets?fieldSelector=${selector}&watch=true&resourceVersion=${resourceVersion}&timeoutSeconds=3600`)
  if (res.statusCode !== 200) throw new Error(`the raw watch answered ${res.statusCode}`)
  let pending = ''
  res.setEncoding('utf8')
  res.on('data', (chunk: string) => {
    const at = performance.now()
    pending += chunk
    let newline: number
    while ((newline = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, newline)
      pending = pending.slice(newline + 1)
      if (line.trim() === '') continue
      const event = JSON.parse(line)
      if (event.type !== 'ADDED' && event.type !== 'MODIFIED') continue
      onData(decodeData(event.object.data ?? {}), at)
    }
  })
  res.on('error', () => {})
  return { close: () => res.destroy() }
}

export function decodeData (data: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]))
}
