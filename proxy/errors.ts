// The one catalogue of errors a client of the sidecar can meet. Each message
// names the cause and the fix; none ever carries a secret value or a token.
// HTTP answers them as JSON { code, message }.
import createError from '@fastify/error'

export const errors = {
  MISSING_PROXY_HEADER: createError('MISSING_PROXY_HEADER',
    'requests must carry the header "Kube-Secret-Proxy: true"; it keeps other software that can be tricked into sending requests (SSRF) away from your secrets: e.g. curl -H "Kube-Secret-Proxy: true" http://127.0.0.1:8642/v1/secrets', 403),
  UNAUTHORIZED: createError('UNAUTHORIZED',
    'this sidecar requires "Authorization: Bearer <token>" with the token from the file its --auth-token-file names', 401),
  HOST_NOT_ALLOWED: createError<[string]>('HOST_NOT_ALLOWED',
    'Host %s is not allowed (DNS rebinding guard): use localhost, 127.0.0.1 or [::1], or start the sidecar with --allowed-host for that name', 403),
  ORIGIN_REFUSED: createError('ORIGIN_REFUSED',
    'requests from a browser (an Origin header) are refused: the secrets API is for the app in this pod, not for web pages', 403),
  INVALID_NAME: createError<[string]>('INVALID_NAME',
    '%s', 400),
  SECRET_NOT_CONFIGURED: createError<[string]>('SECRET_NOT_CONFIGURED',
    'secret %s is not served by this sidecar: add it with --secret (or allow it with --allow) and grant its ServiceAccount get, list, watch on it', 404),
  SECRET_NOT_FOUND: createError<[string]>('SECRET_NOT_FOUND',
    'secret %s does not exist in the API server (deleted or not created yet); it is served again as soon as it exists', 404),
  SECRET_NOT_LOADED: createError<[string]>('SECRET_NOT_LOADED',
    'secret %s has not been loaded from the API server yet: retry shortly, or wait on /readyz of the metrics listener', 503),
  SECRET_FORBIDDEN: createError<[string, string]>('SECRET_FORBIDDEN',
    'the sidecar may no longer read secret %s: %s', 403),
  KEY_NOT_FOUND: createError<[string, string]>('KEY_NOT_FOUND',
    'secret %s has no key %s', 404),
  PREVIOUS_EXPIRED: createError<[string]>('PREVIOUS_EXPIRED',
    'secret %s has no previous content: none is kept (--keep-previous is 0) or its window has closed', 404),
  INVALID_QUERY: createError<[string]>('INVALID_QUERY',
    '%s', 400),
  INVALID_WAIT: createError<[string]>('INVALID_WAIT',
    'wait=%s is not a duration: use seconds such as wait=30s (capped by --max-wait)', 400),
  TOO_MANY_CLIENTS: createError<[number]>('TOO_MANY_CLIENTS',
    'this sidecar already serves %s streaming clients (--max-clients): close one or raise the limit', 503),
  UPGRADE_REQUIRED: createError('UPGRADE_REQUIRED',
    'GET /v1/watch is a WebSocket endpoint: connect with a WebSocket client, or read the same messages as Server-Sent Events from GET /v1/events (curl -N)', 426),
  SHUTTING_DOWN: createError('SHUTTING_DOWN',
    'the sidecar is shutting down', 503),
  INTERNAL: createError('INTERNAL',
    'the sidecar failed to answer: its log has the details', 500),
  NOT_FOUND: createError<[string]>('NOT_FOUND',
    'no route %s: see the HTTP API in the README (GET /v1/secrets lists what is served)', 404)
} as const

export type ErrorCode = keyof typeof errors

/** The body an HTTP error answers with. */
export interface ErrorBody {
  code: string
  message: string
}
