// Who may talk to the secrets API at all, decided in onRequest before any
// lookup (WebSocket upgrades included): no browser (Origin), only loopback
// Host names or allowed ones (DNS rebinding), the anti-SSRF header, and the
// bearer token when one is configured.
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { errors } from '../errors.ts'

export interface GuardOptions {
  /** bearer token required when set */
  authToken?: Buffer | undefined
  /** Host names allowed besides localhost, 127.0.0.1 and [::1] (any port) */
  allowedHosts: readonly string[]
}

const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '[::1]']

/** The host name of a Host header, without its port, lowercased; undefined when malformed. */
export function hostName (host: string): string | undefined {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::\d{1,5})?$/.exec(host)
  return match?.[1]?.toLowerCase()
}

// Hashing both sides first gives timingSafeEqual equal lengths, so neither
// the token's value nor its length leaks through timing.
function digest (value: Buffer): Buffer {
  return createHash('sha256').update(value).digest()
}

export function createGuard (options: GuardOptions): (request: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const allowed = new Set([...LOOPBACK_HOSTS, ...options.allowedHosts.map((h) => h.toLowerCase())])
  const expected = options.authToken === undefined ? undefined : digest(options.authToken)

  return async function guard (request, reply) {
    const headers = request.headers
    if (headers.origin !== undefined) throw new errors.ORIGIN_REFUSED()
    const host = headers.host
    const name = host === undefined ? undefined : hostName(host)
    if (name === undefined || !allowed.has(name)) {
      // The Host is the client's own input, not a secret; bounded so a log line stays a line.
      throw new errors.HOST_NOT_ALLOWED(host === undefined ? '(none)' : JSON.stringify(host.slice(0, 100)))
    }
    if (headers['kube-secret-proxy']?.toString().trim().toLowerCase() !== 'true') throw new errors.MISSING_PROXY_HEADER()
    if (expected !== undefined) {
      const match = /^Bearer +(\S+) *$/i.exec(headers.authorization ?? '')
      if (match === null || !timingSafeEqual(digest(Buffer.from(match[1]!)), expected)) {
        reply.header('www-authenticate', 'Bearer')
        throw new errors.UNAUTHORIZED()
      }
    }
  }
}
