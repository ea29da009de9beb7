// Talks to the API server over HTTP/2: every request and watch is a stream on
// one shared TLS connection; another opens only when the server's stream
// limit (kube-apiserver's --http2-max-streams-per-connection, 100 by default)
// is full, as Go's client does.
import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2'
import { once } from 'node:events'
import { loadCredentials, type Credentials, type CredentialsSpec } from './credentials.ts'

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'
  object: any
}

export interface ApiResponse<T = any> {
  status: number
  /** parsed JSON, or the text when the body is not JSON */
  body: T
}

/** The API server answered a status other than 2xx (or a watch sent an ERROR event). */
export class ApiStatusError extends Error {
  override readonly name = 'ApiStatusError'
  readonly status: number
  readonly body: unknown
  constructor (method: string, path: string, status: number, body: unknown) {
    super(`${method} ${pathOnly(path)} answered ${status}: ${statusMessage(body)}`)
    this.status = status
    this.body = body
  }
}

/** The API server could not be reached, or the connection broke mid-request. */
export class ApiConnectionError extends Error {
  override readonly name = 'ApiConnectionError'
  constructor (method: string, path: string, server: string, cause: unknown) {
    super(`${method} ${pathOnly(path)}: cannot reach the API server ${server}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
  }
}

/** pino-like; the client logs only connection changes, at debug */
export interface KubeLog {
  debug: (obj: object, msg: string) => void
  info: (obj: object, msg: string) => void
  warn: (obj: object, msg: string) => void
  error: (obj: object, msg: string) => void
}

export interface ApiClientOptions {
  /** resolved Credentials, or what config knows (files are read on first use) */
  credentials: Credentials | CredentialsSpec
  /** client-side limit on non-watch requests per second (token bucket refill rate) */
  qps?: number
  /** how many non-watch requests may go at once before qps applies */
  burst?: number
  /** a request that has not completed within this is cancelled (default 30 s); watches are exempt */
  requestTimeoutMs?: number
  /** an HTTP/2 PING this often detects a dead connection (default 30 s; 0 turns it off) */
  pingIntervalMs?: number
  userAgent?: string
  log?: KubeLog
}

export interface WatchOptions {
  signal: AbortSignal
  /** called once the API server accepted the watch (200) */
  onOpen?: () => void
}

export interface ApiClient {
  /** the resolved credentials (their files are read on first use) */
  credentials: () => Promise<Credentials>
  /** sends a request; resolves with any HTTP status, rejects with ApiConnectionError */
  request: <T = any>(method: string, path: string, body?: unknown) => Promise<ApiResponse<T>>
  /**
   * Streams a watch. Ends when the server ends it (its timeoutSeconds).
   * Throws ApiStatusError for a non-200 answer or an ERROR event (with the
   * Status code, e.g. 410), ApiConnectionError when the connection breaks.
   * Aborting `signal` ends the iteration quietly.
   */
  watch: (path: string, options: WatchOptions) => AsyncIterable<WatchEvent>
  /** open HTTP/2 connections (TCP sockets) to the API server right now */
  connections: () => number
  close: () => Promise<void>
}

interface PooledSession {
  session: ClientHttp2Session
  ready: Promise<void>
  active: number
  /** of those, watches */
  watches: number
  /** after GOAWAY or an error: finish what runs, start nothing new */
  draining: boolean
  ping: NodeJS.Timeout | undefined
}

export function createApiClient (options: ApiClientOptions): ApiClient {
  const given = options.credentials
  let resolving: Promise<Credentials> | undefined = 'authorization' in given ? Promise.resolve(given) : undefined
  const getCredentials = async (): Promise<Credentials> => {
    resolving ??= loadCredentials(given as CredentialsSpec)
    // Not cached when it fails: a file can appear later.
    return resolving.catch((err) => { resolving = undefined; throw err })
  }
  const log = options.log
  const requestTimeoutMs = options.requestTimeoutMs ?? 30_000
  const pingIntervalMs = options.pingIntervalMs ?? 30_000
  const limiter = createTokenBucket(options.qps ?? 20, options.burst ?? 40)
  const userAgent = options.userAgent ?? 'kube-secret-proxy'
  const pool: PooledSession[] = []
  let closed = false

  function open (credentials: Credentials): PooledSession {
    const server = credentials.server
    log?.debug({ server, open: pool.length + 1 }, 'opening an HTTP/2 connection to the API server')
    const session = connect(server, {
      ...(credentials.ca !== undefined ? { ca: credentials.ca } : {}),
      ...(credentials.cert !== undefined ? { cert: credentials.cert } : {}),
      ...(credentials.key !== undefined ? { key: credentials.key } : {}),
      ...(credentials.servername !== undefined ? { servername: credentials.servername } : {}),
      rejectUnauthorized: credentials.rejectUnauthorized
    })
    const pooled: PooledSession = { session, ready: Promise.resolve(), active: 0, watches: 0, draining: false, ping: undefined }
    // Streams are assigned only after the server's SETTINGS arrive, so the
    // stream limit is known; until then nghttp2 would queue them silently.
    pooled.ready = new Promise<void>((resolve, reject) => {
      session.once('remoteSettings', () => resolve())
      session.once('error', reject)
      session.once('close', () => reject(new Error('connection closed')))
    })
    pooled.ready.catch(() => {})
    const retire = (): void => {
      pooled.draining = true
      if (pooled.ping !== undefined) clearInterval(pooled.ping)
      const i = pool.indexOf(pooled)
      if (i >= 0) pool.splice(i, 1)
      wake()
    }
    session.on('goaway', retire)
    session.on('error', () => { retire(); session.destroy() })
    session.on('close', retire)
    if (pingIntervalMs > 0) {
      pooled.ping = setInterval(() => {
        session.ping((err) => { if (err !== null && !session.destroyed) session.destroy(err) })
      }, pingIntervalMs)
      pooled.ping.unref()
    }
    pool.push(pooled)
    return pooled
  }

  // Watches hold their stream for minutes, so each connection keeps a few
  // streams for short requests; otherwise 100 watches would leave a relist
  // or an access review nowhere to go but a new connection.
  const watchLimit = (p: PooledSession): number => {
    const limit = streamLimit(p)
    return limit - Math.min(10, Math.floor(limit / 10))
  }
  const usable = (p: PooledSession): boolean => !p.draining && !p.session.destroyed
  const fits = (p: PooledSession, kind: 'watch' | 'request'): boolean =>
    p.active < streamLimit(p) && (kind === 'request' || p.watches < watchLimit(p))
  // Callers waiting for a stream to end somewhere; woken on every release.
  let waiters: Array<() => void> = []
  const wake = (): void => {
    const woken = waiters
    waiters = []
    for (const resolve of woken) resolve()
  }

  /**
   * A session with a free stream. A full connection whose streams are not all
   * watches frees a slot soon, so a burst of short requests waits for it
   * rather than opening another connection; only watches beyond what the
   * open connections can hold open a new one.
   */
  async function acquire (credentials: Credentials, kind: 'watch' | 'request'): Promise<PooledSession> {
    for (;;) {
      if (closed) throw new Error('the API client is closed')
      const live = pool.filter(usable)
      let chosen = live.find((p) => fits(p, kind))
      if (chosen === undefined) {
        const slotWillFree = live.some((p) => kind === 'request' ? p.watches < streamLimit(p) : p.watches < watchLimit(p))
        if (slotWillFree) {
          await new Promise<void>((resolve) => { waiters.push(resolve) })
          continue
        }
        chosen = open(credentials)
      }
      // Claim the slot before awaiting, so concurrent callers count it.
      chosen.active += 1
      if (kind === 'watch') chosen.watches += 1
      try {
        await chosen.ready
      } catch (err) {
        release(chosen, kind)
        throw err
      }
      if (!usable(chosen) || chosen.active > streamLimit(chosen) || (kind === 'watch' && chosen.watches > watchLimit(chosen))) {
        // Retired meanwhile, or more callers claimed slots before SETTINGS
        // arrived than the server allows: look again.
        release(chosen, kind)
        continue
      }
      chosen.session.ref()
      return chosen
    }
  }

  function release (p: PooledSession, kind: 'watch' | 'request'): void {
    p.active -= 1
    if (kind === 'watch') p.watches -= 1
    // An idle session must not keep the process alive; open streams do.
    if (p.active === 0 && !p.session.destroyed) p.session.unref()
    wake()
  }

  function streamLimit (p: PooledSession): number {
    // Before SETTINGS arrive, remoteSettings holds the protocol's "unlimited".
    const limit = p.session.remoteSettings?.maxConcurrentStreams
    return limit === undefined || limit > 1_000_000 ? Number.MAX_SAFE_INTEGER : limit
  }

  async function startStream (method: string, path: string, body: unknown, kind: 'watch' | 'request' = 'request'): Promise<{ stream: ClientHttp2Stream, headers: IncomingHttpHeaders, server: string }> {
    const credentials = await getCredentials()
    const server = credentials.server
    let pooled: PooledSession
    try {
      pooled = await acquire(credentials, kind)
    } catch (err) {
      if (closed) throw err
      throw new ApiConnectionError(method, path, server, err)
    }
    const authorization = await credentials.authorization()
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
    const headers: Record<string, string> = {
      [constants.HTTP2_HEADER_METHOD]: method,
      [constants.HTTP2_HEADER_PATH]: path,
      accept: 'application/json',
      'user-agent': userAgent
    }
    if (authorization !== undefined) headers.authorization = authorization
    if (payload !== undefined) headers['content-type'] = 'application/json'
    let stream: ClientHttp2Stream
    try {
      stream = pooled.session.request(headers, { endStream: payload === undefined })
    } catch (err) {
      release(pooled, kind)
      throw new ApiConnectionError(method, path, server, err)
    }
    // One release per stream, however it ends. Errors reach the reader
    // through the stream's iterator or its close; this keeps one from
    // escaping as an uncaught 'error' when nobody is reading any more.
    stream.once('close', () => { release(pooled, kind) })
    stream.on('error', () => {})
    if (payload !== undefined) stream.end(payload)
    try {
      const [responseHeaders] = await Promise.race([
        once(stream, 'response') as Promise<[IncomingHttpHeaders]>,
        once(stream, 'close').then(() => { throw new Error(`stream closed (code ${stream.rstCode ?? '?'})`) })
      ])
      return { stream, headers: responseHeaders, server }
    } catch (err) {
      stream.destroy()
      throw new ApiConnectionError(method, path, server, err)
    }
  }

  async function readBody (stream: ClientHttp2Stream): Promise<unknown> {
    const chunks: Buffer[] = []
    for await (const chunk of stream) chunks.push(chunk as Buffer)
    const text = Buffer.concat(chunks).toString('utf8')
    try {
      return JSON.parse(text)
    } catch {
      return text
    }
  }

  async function requestOnce<T> (method: string, path: string, body: unknown): Promise<ApiResponse<T>> {
    const { stream, headers, server } = await startStream(method, path, body)
    const timer = setTimeout(() => stream.destroy(new Error(`no complete answer within ${requestTimeoutMs} ms`)), requestTimeoutMs)
    try {
      const parsed = await readBody(stream)
      return { status: Number(headers[constants.HTTP2_HEADER_STATUS]), body: parsed as T }
    } catch (err) {
      throw new ApiConnectionError(method, path, server, err)
    } finally {
      clearTimeout(timer)
    }
  }

  const client: ApiClient = {
    credentials: getCredentials,
    async request (method, path, body) {
      await limiter.take()
      const res = await requestOnce<any>(method, path, body)
      if (res.status !== 401) return res
      // The kubelet may have rotated the token since we last looked.
      log?.info({ method, path: pathOnly(path) }, 'the API server answered 401: re-reading the token and retrying once')
      await (await getCredentials()).refresh()
      await limiter.take()
      return requestOnce(method, path, body)
    },
    watch (path, watchOptions) {
      return watchStream(path, watchOptions)
    },
    connections () {
      return pool.filter((p) => !p.session.destroyed).length
    },
    async close () {
      closed = true
      wake()
      await Promise.all(pool.splice(0).map(async (p) => {
        if (p.ping !== undefined) clearInterval(p.ping)
        if (p.session.destroyed) return
        const done = once(p.session, 'close').catch(() => {})
        // A graceful close waits for open streams; a watch left open would hold it forever.
        p.session.close()
        const force = setTimeout(() => p.session.destroy(), 1000)
        await done
        clearTimeout(force)
      }))
    }
  }

  async function * watchStream (path: string, { signal, onOpen }: WatchOptions): AsyncGenerator<WatchEvent> {
    if (signal.aborted) return
    let opened = await startStream('GET', path, undefined, 'watch')
    let status = Number(opened.headers[constants.HTTP2_HEADER_STATUS])
    if (status === 401) {
      opened.stream.destroy()
      log?.info({ path: pathOnly(path) }, 'the API server answered 401 to a watch: re-reading the token and retrying once')
      await (await getCredentials()).refresh()
      opened = await startStream('GET', path, undefined, 'watch')
      status = Number(opened.headers[constants.HTTP2_HEADER_STATUS])
    }
    const { stream, server } = opened
    const onAbort = (): void => { stream.close(constants.NGHTTP2_CANCEL) }
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      if (status !== 200) throw new ApiStatusError('GET', path, status, await readBody(stream).catch(() => undefined))
      onOpen?.()
      let buffered = ''
      try {
        for await (const chunk of stream) {
          buffered += (chunk as Buffer).toString('utf8')
          let newline: number
          while ((newline = buffered.indexOf('\n')) >= 0) {
            const line = buffered.slice(0, newline).trim()
            buffered = buffered.slice(newline + 1)
            if (line === '') continue
            const event = JSON.parse(line) as WatchEvent
            if (event.type === 'ERROR') {
              const code = typeof event.object?.code === 'number' ? event.object.code : 500
              throw new ApiStatusError('GET', path, code, event.object)
            }
            yield event
          }
        }
      } catch (err) {
        if (signal.aborted || err instanceof ApiStatusError) throw err
        throw new ApiConnectionError('GET', path, server, err)
      }
      // A stream reset by the server ends without an error event on the iterator.
      if (!signal.aborted && stream.rstCode !== undefined && stream.rstCode !== constants.NGHTTP2_NO_ERROR) {
        throw new ApiConnectionError('GET', path, server, new Error(`stream reset (code ${stream.rstCode})`))
      }
    } catch (err) {
      if (signal.aborted) return
      throw err
    } finally {
      signal.removeEventListener('abort', onAbort)
      if (!stream.closed) stream.close(constants.NGHTTP2_CANCEL)
    }
  }

  return client
}

/** A token bucket: `burst` requests at once, then `qps` per second. */
export function createTokenBucket (qps: number, burst: number): { take: () => Promise<void> } {
  let tokens = burst
  let last = Date.now()
  let queue = Promise.resolve()
  const refill = (): void => {
    const now = Date.now()
    tokens = Math.min(burst, tokens + (now - last) * qps / 1000)
    last = now
  }
  return {
    take () {
      // Callers wait in order; each waits only for its own token.
      const turn = queue.then(async () => {
        refill()
        if (tokens < 1) {
          await new Promise((resolve) => setTimeout(resolve, Math.ceil((1 - tokens) * 1000 / qps)))
          refill()
        }
        tokens -= 1
      })
      queue = turn
      return turn
    }
  }
}

function pathOnly (path: string): string {
  return path.split('?')[0] ?? path
}

function statusMessage (body: unknown): string {
  if (typeof body === 'object' && body !== null && 'message' in body) return String((body as { message: unknown }).message)
  return typeof body === 'string' ? body.slice(0, 200) : JSON.stringify(body)?.slice(0, 200) ?? ''
}
