// A minimal HTTPS client for the test control plane: just enough of the
// Kubernetes API to set up fixtures, as the admin or as a ServiceAccount.
import { request, Agent } from 'node:https'
import type { IncomingMessage } from 'node:http'

export interface Identity {
  ca: Buffer
  /** admin: client certificate and key */
  cert?: Buffer
  key?: Buffer
  /** a ServiceAccount: bearer token */
  token?: string
}

export interface ApiResponse<T = any> {
  status: number
  body: T
}

export class ApiError extends Error {
  readonly status: number
  readonly body: unknown
  constructor (method: string, path: string, status: number, body: unknown) {
    const reason = typeof body === 'object' && body !== null && 'message' in body ? String(body.message) : JSON.stringify(body)
    super(`${method} ${path} answered ${status}: ${reason}`)
    this.status = status
    this.body = body
  }
}

export class KubeApi {
  readonly server: string
  readonly #identity: Identity
  readonly #agent: Agent

  constructor (server: string, identity: Identity) {
    this.server = server
    this.#identity = identity
    const tls: Record<string, Buffer> = { ca: identity.ca }
    if (identity.cert !== undefined) tls.cert = identity.cert
    if (identity.key !== undefined) tls.key = identity.key
    this.#agent = new Agent({ ...tls, keepAlive: true })
  }

  /** The same server and CA, authenticated by a bearer token. */
  withToken (token: string): KubeApi {
    return new KubeApi(this.server, { ca: this.#identity.ca, token })
  }

  /** Sends a request and returns status and parsed body, whatever the status. */
  async send<T = any> (method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<ApiResponse<T>> {
    const res = await this.#open(method, path, body, contentType)
    const chunks: Buffer[] = []
    for await (const chunk of res) chunks.push(chunk as Buffer)
    const text = Buffer.concat(chunks).toString('utf8')
    let parsed: unknown = text
    try { parsed = JSON.parse(text) } catch { /* not JSON: keep the text */ }
    return { status: res.statusCode ?? 0, body: parsed as T }
  }

  /** Like send, but throws ApiError unless the status is 2xx. */
  async call<T = any> (method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
    const res = await this.send<T>(method, path, body, contentType)
    if (res.status < 200 || res.status > 299) throw new ApiError(method, path, res.status, res.body)
    return res.body
  }

  /** Opens a streaming request (a watch); the caller reads and destroys it. */
  stream (path: string): Promise<IncomingMessage> {
    return this.#open('GET', path, undefined, 'application/json')
  }

  #open (method: string, path: string, body: unknown, contentType: string): Promise<IncomingMessage> {
    const url = new URL(path, this.server)
    const headers: Record<string, string> = { accept: 'application/json' }
    if (this.#identity.token !== undefined) headers.authorization = `Bearer ${this.#identity.token}`
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
    if (payload !== undefined) {
      headers['content-type'] = contentType
      headers['content-length'] = String(payload.length)
    }
    return new Promise((resolve, reject) => {
      const req = request(url, { method, headers, agent: this.#agent }, resolve)
      req.on('error', reject)
      req.end(payload)
    })
  }

  close (): void {
    this.#agent.destroy()
  }
}
