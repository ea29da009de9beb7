// Shared by the HTTP tests: an app over a real store, recorded metrics and
// log lines to wait on, and WebSocket / SSE clients that queue what they get.
import { EventEmitter, once } from 'node:events'
import { request, type IncomingMessage, type ClientRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import type { FastifyInstance } from 'fastify'
import { WebSocket } from 'ws'
import { buildApp, type AppDeps, type HttpMetrics } from '../../proxy/http/app.ts'
import { createSecretStore, type SecretContent, type SecretStore, type SecretStoreOptions } from '../../proxy/store/secret-store.ts'

export const HEADERS = { 'kube-secret-proxy': 'true' } as const

interface Test {
  teardown: (fn: () => unknown) => void
}

export function content (data: Record<string, string | Buffer>, type = 'Opaque'): SecretContent {
  return { type, data: new Map(Object.entries(data).map(([k, v]) => [k, Buffer.isBuffer(v) ? v : Buffer.from(v)])) }
}

/** Every call the app made to its metrics hooks; emits each call by name. */
export class RecordedMetrics extends EventEmitter implements HttpMetrics {
  readonly calls: Array<[string, ...unknown[]]> = []
  private record (name: string, ...args: unknown[]): void {
    this.calls.push([name, ...args])
    this.emit(name, ...args)
  }

  request (route: string, code: number, seconds: number): void { this.record('request', route, code, seconds) }
  clients (kind: 'websocket' | 'sse', delta: number): void { this.record('clients', kind, delta) }
  messageSent (kind: 'websocket' | 'sse', type: string): void { this.record('messageSent', kind, type) }
  slowClientClosed (kind: 'websocket' | 'sse'): void { this.record('slowClientClosed', kind) }
  propagation (seconds: number): void { this.record('propagation', seconds) }
  of (name: string): unknown[][] { return this.calls.filter((c) => c[0] === name).map((c) => c.slice(1)) }
  /** the current number of clients of a kind */
  connected (kind: 'websocket' | 'sse'): number {
    return this.of('clients').filter((c) => c[0] === kind).reduce((n, c) => n + (c[1] as number), 0)
  }
}

/** Log lines as the logger wrote them, parsed; emits 'line'. */
export class CapturedLog extends EventEmitter {
  readonly raw: string[] = []
  readonly stream = new Writable({
    write: (chunk: Buffer, _encoding, callback) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue
        this.raw.push(line)
        this.emit('line', JSON.parse(line))
      }
      callback()
    }
  })

  lines (): Array<Record<string, unknown>> { return this.raw.map((l) => JSON.parse(l) as Record<string, unknown>) }

  /** resolves with the first line, already written or still to come, that matches */
  async waitFor (match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    const found = this.lines().find(match)
    if (found !== undefined) return found
    return await new Promise((resolve) => {
      const onLine = (line: Record<string, unknown>): void => {
        if (!match(line)) return
        this.off('line', onLine)
        resolve(line)
      }
      this.on('line', onLine)
    })
  }
}

export interface Setup {
  app: FastifyInstance
  store: SecretStore
  metrics: RecordedMetrics
  log: CapturedLog
  /** moves the store's clock */
  advance: (ms: number) => void
  /** how many times the app looked a secret up in the store */
  lookups: string[]
}

export interface SetupOptions extends Partial<Omit<AppDeps, 'store' | 'metrics' | 'logger'>> {
  secrets?: SecretStoreOptions['secrets']
  keepPreviousMs?: number
}

export const SECRETS = [
  { namespace: 'default', name: 'db', optional: false },
  { namespace: 'default', name: 'api', optional: true },
  { namespace: 'other', name: 'tls', optional: false }
]

export async function setup (t: Test, options: SetupOptions = {}): Promise<Setup> {
  let now = new Date('2024-01-01T00:00:00Z')
  const real = createSecretStore({
    secrets: options.secrets ?? SECRETS,
    keepPreviousMs: options.keepPreviousMs ?? 0,
    clock: () => now,
    bootId: 'boot1'
  })
  const lookups: string[] = []
  // Counts lookups, so tests can tell a request was refused before any.
  const store = new Proxy(real, {
    get (target, property, receiver) {
      if (property === 'get') return (id: string) => { lookups.push(id); return target.get(id) }
      if (property === 'demand') return (namespace: string, name: string) => { lookups.push(`${namespace}/${name}`); return target.demand(namespace, name) }
      return Reflect.get(target, property, receiver)
    }
  })
  const metrics = new RecordedMetrics()
  const log = new CapturedLog()
  const { secrets: _s, keepPreviousMs: _k, ...deps } = options
  const app = await buildApp({
    defaultNamespace: 'default',
    allowedHosts: [],
    maxWaitMs: 10_000,
    maxClients: 10,
    sendBufferBytes: 1 << 20,
    pingIntervalMs: 60_000,
    ...deps,
    store,
    metrics,
    logger: pino({ level: 'trace' }, log.stream)
  })
  t.teardown(() => app.close())
  await app.ready()
  // @fastify/websocket 11.3.7's injectWS sends Sec-WebSocket-Version as the
  // number 13, which ws 8.23 refuses (it wants the string): mend it on the way in.
  app.server.prependListener('upgrade', (req: { headers: Record<string, unknown> }) => {
    if (typeof req.headers['sec-websocket-version'] === 'number') req.headers['sec-websocket-version'] = String(req.headers['sec-websocket-version'])
  })
  return { app, store, metrics, log, lookups, advance: (ms) => { now = new Date(now.getTime() + ms) } }
}

/** A FIFO of things that arrive before or after someone asks for them. */
export class Queue<T> {
  private readonly items: T[] = []
  private readonly waiting: Array<(item: T) => void> = []
  push (item: T): void {
    const resolve = this.waiting.shift()
    if (resolve !== undefined) resolve(item)
    else this.items.push(item)
  }

  async next (): Promise<T> {
    const item = this.items.shift()
    if (item !== undefined) return item
    return await new Promise((resolve) => { this.waiting.push(resolve) })
  }

  get size (): number { return this.items.length }
}

export type Message = Record<string, unknown> & { type: string, cursor: string, data?: Record<string, string> }

export interface WsClient {
  ws: WebSocket
  messages: Queue<Message>
  /** the close code and reason */
  closed: Promise<[number, string]>
}

function listen (ws: WebSocket, messages: Queue<Message>): Promise<[number, string]> {
  ws.on('message', (data) => { messages.push(JSON.parse(String(data)) as Message) })
  return new Promise((resolve) => { ws.once('close', (code, reason) => { resolve([code, String(reason)]) }) })
}

/**
 * A WebSocket through injectWS; listeners are attached before the first
 * message can arrive. Let app.close() close it: a close handshake started
 * earlier (by either side) over the injected socket pair never reports the
 * socket closed to the server, whose ws then holds a 30 s close timer.
 * Tests about closing use connectWebSocket.
 */
export async function injectWebSocket (t: Test, app: FastifyInstance, path: string, headers: Record<string, string> = HEADERS): Promise<WsClient> {
  const messages = new Queue<Message>()
  let closed: Promise<[number, string]> | undefined
  const ws = await app.injectWS(path, { headers: { host: 'localhost', ...headers } }, {
    onInit: (ws) => { closed = listen(ws, messages) }
  })
  t.teardown(() => ws.terminate())
  return { ws, messages, closed: closed! }
}

export async function listenLocal (app: FastifyInstance): Promise<number> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as AddressInfo).port
}

/** A WebSocket over a real socket, for tests about the socket itself. */
export async function connectWebSocket (t: Test, port: number, path: string, options: { autoPong?: boolean } = {}): Promise<WsClient> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, { headers: HEADERS, autoPong: options.autoPong ?? true })
  const messages = new Queue<Message>()
  const closed = listen(ws, messages)
  t.teardown(() => ws.terminate())
  await once(ws, 'open')
  return { ws, messages, closed }
}

export interface SseEvent {
  id?: string
  event?: string
  data?: string
  comment?: string
}

export interface SseClient {
  req: ClientRequest
  res: IncomingMessage
  events: Queue<SseEvent>
  ended: Promise<void>
}

/** A Server-Sent Events stream over a real socket, parsed into events and comments. */
export async function connectSse (t: Test, port: number, path: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const req = request({ host: '127.0.0.1', port, path, headers: { ...HEADERS, ...headers } })
  t.teardown(() => req.destroy())
  req.end()
  const [res] = await once(req, 'response') as [IncomingMessage]
  const events = new Queue<SseEvent>()
  let buffer = ''
  let event: SseEvent = {}
  res.setEncoding('utf8')
  res.on('data', (chunk: string) => {
    buffer += chunk
    let newline: number
    while ((newline = buffer.indexOf('\n')) !== -1) {
      const line = buffer.slice(0, newline)
      buffer = buffer.slice(newline + 1)
      if (line === '') {
        if (Object.keys(event).length > 0) events.push(event)
        event = {}
      } else if (line.startsWith(':')) {
        event.comment = line.slice(1).trim()
      } else {
        const colon = line.indexOf(':')
        const field = line.slice(0, colon) as 'id' | 'event' | 'data'
        event[field] = line.slice(colon + 1).replace(/^ /, '')
      }
    }
  })
  const ended = new Promise<void>((resolve) => { res.once('end', resolve); res.once('close', resolve) })
  return { req, res, events, ended }
}

export function parse (event: SseEvent): Message {
  return JSON.parse(event.data ?? 'null') as Message
}

export function b64 (value: string): string {
  return Buffer.from(value).toString('base64')
}
