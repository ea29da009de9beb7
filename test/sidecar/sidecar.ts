// Runs the sidecar as it runs in a pod (a ServiceAccount directory,
// KUBERNETES_SERVICE_HOST/PORT, loopback listeners) and talks to it as the
// app would: HTTP, WebSocket and SSE.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { request } from 'node:http'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import WebSocket from 'ws'
import type { Cluster, PodServiceAccount } from '../cluster/cluster.ts'
import { freePort } from '../cluster/control-plane.ts'
import { waitFor } from '../cluster/helpers.ts'

export const MAIN = join(import.meta.dirname, '..', '..', 'proxy', 'main.ts')
export const PROXY_HEADER = { 'kube-secret-proxy': 'true' }

export interface HttpResult {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
  json: () => any
}

export interface StartOptions {
  namespace: string
  serviceAccount: string
  args: string[]
  /** a token to start with (default: a fresh one for the ServiceAccount) */
  token?: string
  env?: Record<string, string>
  /** wait for /readyz (default true) */
  waitReady?: boolean
}

/** Every running sidecar, killed if the test process exits without stopping them. */
const running = new Set<ChildProcess>()
process.once('exit', () => { for (const child of running) child.kill('SIGKILL') })

export class Sidecar {
  readonly child: ChildProcess
  readonly port: number
  readonly metricsPort: number
  readonly pod: PodServiceAccount
  /** every line the sidecar wrote to stdout or stderr */
  readonly lines: string[] = []
  readonly exited: Promise<[number | null, NodeJS.Signals | null]>

  constructor (child: ChildProcess, port: number, metricsPort: number, pod: PodServiceAccount) {
    this.child = child
    this.port = port
    this.metricsPort = metricsPort
    this.pod = pod
    running.add(child)
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => this.lines.push(line))
    }
    this.exited = once(child, 'exit').then(([code, signal]) => {
      running.delete(child)
      return [code as number | null, signal as NodeJS.Signals | null]
    })
  }

  static async start (cluster: Cluster, options: StartOptions): Promise<Sidecar> {
    const token = options.token ?? await cluster.mintToken(options.namespace, options.serviceAccount)
    const pod = cluster.podServiceAccount(options.namespace, token)
    const [port, metricsPort] = [await freePort(), await freePort()]
    const child = spawn(process.execPath, [MAIN,
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

  /** Waits until /readyz answers 200; fails early if the process exits. */
  async waitReady (timeoutMs = 20_000): Promise<void> {
    await waitFor('the sidecar to become ready', async () => {
      if (this.child.exitCode !== null) throw new Error(`the sidecar exited (${this.child.exitCode}):\n${this.lines.join('\n')}`)
      return (await this.metrics('/readyz')).status === 200 ? true : undefined
    }, timeoutMs)
  }

  /** A GET on the secrets API, with the anti-SSRF header unless overridden. */
  get (path: string, headers: Record<string, string> = {}): Promise<HttpResult> {
    return httpGet(this.port, path, { ...PROXY_HEADER, ...headers })
  }

  metrics (path: string): Promise<HttpResult> {
    return httpGet(this.metricsPort, path, {})
  }

  /** Opens a WebSocket to /v1/watch and collects its messages. */
  async websocket (query = '', headers: Record<string, string> = PROXY_HEADER): Promise<MessageStream> {
    const ws = new WebSocket(`ws://127.0.0.1:${this.port}/v1/watch${query}`, { headers })
    const stream = new MessageStream(() => ws.terminate())
    ws.on('message', (data) => stream.push(JSON.parse(String(data))))
    ws.on('close', (code) => stream.closed(code))
    ws.on('error', () => {})
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('unexpected-response', (_req, res) => reject(new Error(`WebSocket upgrade answered ${res.statusCode}`)))
      ws.once('error', reject)
    })
    return stream
  }

  /** Opens /v1/events and collects its Server-Sent Events. */
  async sse (query = '', headers: Record<string, string> = {}): Promise<MessageStream> {
    const req = request({ host: '127.0.0.1', port: this.port, path: `/v1/events${query}`, headers: { ...PROXY_HEADER, ...headers } })
    const stream = new MessageStream(() => req.destroy())
    req.end()
    const [res] = await once(req, 'response') as [import('node:http').IncomingMessage]
    if (res.statusCode !== 200) throw new Error(`SSE answered ${res.statusCode}`)
    let event: { id?: string, event?: string, data: string[] } = { data: [] }
    res.on('error', () => {}) // closing the stream aborts it: expected
    const lines = createInterface({ input: res })
    lines.on('error', () => {})
    lines.on('line', (line) => {
      if (line === '') {
        if (event.data.length > 0) stream.push({ ...JSON.parse(event.data.join('\n')), sseId: event.id, sseEvent: event.event })
        event = { data: [] }
      } else if (line.startsWith('data:')) event.data.push(line.slice(5).trimStart())
      else if (line.startsWith('id:')) event.id = line.slice(3).trim()
      else if (line.startsWith('event:')) event.event = line.slice(6).trim()
    })
    res.on('close', () => stream.closed(0))
    return stream
  }

  /** Sends a signal and returns the exit code. */
  async stop (signal: NodeJS.Signals = 'SIGTERM'): Promise<[number | null, NodeJS.Signals | null]> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal)
    return this.exited
  }

  /** Log lines parsed as JSON (the sidecar logs JSON lines). */
  logRecords (): any[] {
    return this.lines.flatMap((line) => {
      try { return [JSON.parse(line)] } catch { return [] }
    })
  }
}

/** Messages from a WebSocket or an SSE stream, awaited by predicate. */
export class MessageStream {
  readonly messages: any[] = []
  closeCode: number | undefined
  readonly #close: () => void
  #waiters: Array<() => void> = []

  constructor (close: () => void) {
    this.#close = close
  }

  push (message: any): void {
    this.messages.push(message)
    this.#wake()
  }

  closed (code: number): void {
    this.closeCode = code
    this.#wake()
  }

  #wake (): void {
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w()
  }

  /** Resolves with the first message (from index `from`) matching `match`. */
  async next (match: (m: any) => boolean, from = 0, timeoutMs = 20_000): Promise<any> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const found = this.messages.slice(from).find(match)
      if (found !== undefined) return found
      if (this.closeCode !== undefined) throw new Error(`the stream closed (${this.closeCode}) before a matching message; got ${JSON.stringify(this.messages.map((m) => m.type))}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no matching message within ${timeoutMs} ms; got ${JSON.stringify(this.messages.map((m) => m.type))}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
  }

  async waitClosed (timeoutMs = 20_000): Promise<number> {
    const deadline = Date.now() + timeoutMs
    while (this.closeCode === undefined) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error('the stream did not close')
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
    return this.closeCode
  }

  close (): void {
    this.#close()
  }
}

export function httpGet (port: number, path: string, headers: Record<string, string>): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const body = Buffer.concat(chunks)
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body.toString('utf8')) })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/** A new namespace whose ServiceAccount `app` may read the named secrets. */
export async function grantedNamespace (cluster: Cluster, prefix: string, secrets: string[], verbs = ['get', 'list', 'watch']): Promise<{ ns: string, user: string }> {
  const { namespace, user } = await cluster.appServiceAccount(prefix, secrets, verbs)
  return { ns: namespace, user }
}

export const decode = (value: string): string => Buffer.from(value, 'base64').toString('utf8')
