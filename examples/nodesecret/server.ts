// The article's "nodesecret" Express app, rewritten to read its secret from
// the kube-secret-proxy sidecar instead of the Kubernetes API: one GET at
// start-up, then every rotation pushed over the sidecar's WebSocket. The app
// holds no Kubernetes client and no Kubernetes credential; it needs nothing
// but Node.js 24 (node:http, fetch and WebSocket are built in): `node server.ts`.
//
// Environment: KUBE_SECRET_PROXY_URL (http://127.0.0.1:8642), KUBE_SECRET_PROXY_TOKEN_FILE
// (when the sidecar runs with --auth-token-file), SECRET_NAME (mysecretdamaggio),
// SECRET_KEY (secretKey), HOST (0.0.0.0), PORT (8080).
import { createServer } from 'node:http'
import { readFileSync } from 'node:fs'

const proxy = new URL(process.env.KUBE_SECRET_PROXY_URL ?? 'http://127.0.0.1:8642')
const secretName = process.env.SECRET_NAME ?? 'mysecretdamaggio'
const secretKey = process.env.SECRET_KEY ?? 'secretKey'
const host = process.env.HOST ?? '0.0.0.0'
const port = Number(process.env.PORT ?? 8080)

interface Secret { value: string, version: string, updatedAt: string }
let current: Secret | undefined
let stale = false
/** the last stream cursor seen: a reconnect resumes after it instead of starting over */
let cursor: string | undefined

/** One JSON line per event; never the secret's value. */
function log (msg: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), msg, ...fields })}\n`)
}

function proxyHeaders (): Record<string, string> {
  // Without this header the sidecar refuses the request: a URL-fetching bug (SSRF) cannot read secrets.
  const headers: Record<string, string> = { 'Kube-Secret-Proxy': 'true' }
  const tokenFile = process.env.KUBE_SECRET_PROXY_TOKEN_FILE
  if (tokenFile !== undefined && tokenFile !== '') headers.Authorization = `Bearer ${readFileSync(tokenFile, 'utf8').trim()}`
  return headers
}

interface SecretMessage { version: string, updatedAt: string, data?: Record<string, string> }

function use (secret: SecretMessage, how: string): void {
  const encoded = secret.data?.[secretKey]
  if (encoded === undefined) {
    current = undefined
    log('secret has no such key', { secret: secretName, key: secretKey, version: secret.version })
    return
  }
  if (current?.version === secret.version) return
  current = { value: Buffer.from(encoded, 'base64').toString('utf8'), version: secret.version, updatedAt: secret.updatedAt }
  log(how, { secret: secretName, version: secret.version })
}

/** GET the secret once; retries while the sidecar is not up or the secret not loaded yet. */
async function load (): Promise<void> {
  for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
    try {
      const res = await fetch(new URL(`/v1/secrets/${encodeURIComponent(secretName)}`, proxy), { headers: proxyHeaders() })
      if (res.ok) {
        use(await res.json() as SecretMessage, 'secret loaded')
        return
      }
      log('sidecar not ready', { status: res.status, code: ((await res.json()) as { code?: string }).code })
    } catch (err) {
      log('sidecar unreachable', { error: String((err as Error).cause ?? err) })
    }
    await new Promise((resolve) => setTimeout(resolve, delay))
  }
}

/** Follows the WebSocket stream; reconnects with backoff, resuming from the last cursor. */
function follow (attempt = 0): void {
  const url = new URL('/v1/watch', proxy)
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
  url.searchParams.set('secret', secretName)
  if (cursor !== undefined) url.searchParams.set('since', cursor)
  // Node's WebSocket (undici) takes request headers, which the browser API cannot.
  const ws = new WebSocket(url, { headers: proxyHeaders() } as WebSocketInit)
  let opened = false
  ws.addEventListener('open', () => {
    opened = true
    log('following updates', { secret: secretName })
  })
  ws.addEventListener('message', (event) => {
    const message = JSON.parse(String(event.data)) as SecretMessage & { type: string, cursor: string, reason?: string }
    cursor = message.cursor
    switch (message.type) {
      case 'SNAPSHOT':
      case 'MODIFIED':
        use(message, message.type === 'SNAPSHOT' ? 'secret current' : 'secret updated')
        break
      case 'DELETED':
      case 'FORBIDDEN':
        current = undefined
        log(message.type === 'DELETED' ? 'secret deleted' : 'secret forbidden', { secret: secretName, reason: message.reason })
        break
      case 'STALE':
      case 'FRESH':
        stale = message.type === 'STALE'
        log(stale ? 'secret stale: the sidecar cannot reach the API server' : 'secret fresh again', { secret: secretName })
        break
    }
  })
  ws.addEventListener('close', (event) => {
    const next = opened ? 0 : attempt + 1
    const delay = Math.min(250 * 2 ** next, 5000)
    log('stream closed, reconnecting', { code: event.code, inMs: delay })
    setTimeout(() => follow(next), delay)
  })
  ws.addEventListener('error', () => {}) // a close event follows
}

const server = createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(current === undefined ? 503 : 200, { 'content-type': 'text/plain' }).end(current === undefined ? 'no secret\n' : 'ok\n')
    return
  }
  if (req.url !== '/') {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
    return
  }
  // As in the article, the page shows the secret: this is a demo. A real app uses it instead.
  res.writeHead(current === undefined ? 503 : 200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' })
  res.end(current === undefined
    ? `Secret ${secretName} is not available right now.\n`
    : `The secret is: ${current.value.trimEnd()}\n(${secretName}/${secretKey}, version ${current.version}, updated ${current.updatedAt}${stale ? ', stale' : ''})\n`)
})

await load()
follow()
server.listen(port, host, () => log('listening', { url: `http://${host}:${port}/` }))
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    server.close()
    process.exit(0)
  })
}
