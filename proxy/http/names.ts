// What a valid secret name, namespace, key, wait and stream selection look
// like on the HTTP API, as TypeBox schemas checked before any lookup.
import Type, { type Static } from 'typebox'

/** DNS-1123 label: a namespace (its length, at most 63, is checked separately). */
const LABEL = '[a-z0-9](?:[-a-z0-9]*[a-z0-9])?'
/** DNS-1123 subdomain: a Secret's name (at most 253, checked separately). */
const SUBDOMAIN = `${LABEL}(?:\\.${LABEL})*`

export const NAMESPACE_PATTERN = `^${LABEL}$`
export const NAME_PATTERN = `^${SUBDOMAIN}$`
/** A Secret key: `[-._a-zA-Z0-9]+`, and not `.`, `..` or starting with `..` (as the API server insists). */
export const KEY_PATTERN = '^(?!\\.\\.)(?!\\.$)[-._a-zA-Z0-9]+$'
/** `namespace/name` or `name` (the default namespace), as `?secret=` takes it. */
export const SELECTOR_PATTERN = `^(?:[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?/)?${SUBDOMAIN}$`
/** `30s`, `500ms`, `2m` or bare seconds. */
export const WAIT_PATTERN = '^[0-9]{1,9}(?:ms|s|m)?$'

const Namespace = Type.String({ pattern: NAMESPACE_PATTERN, maxLength: 63 })
const Name = Type.String({ pattern: NAME_PATTERN, maxLength: 253 })
const Key = Type.String({ pattern: KEY_PATTERN, maxLength: 253 })

export const SecretParams = Type.Object({ namespace: Type.Optional(Namespace), name: Name })
export type SecretParams = Static<typeof SecretParams>

export const KeyParams = Type.Object({ namespace: Type.Optional(Namespace), name: Name, key: Key })
export type KeyParams = Static<typeof KeyParams>

export const ReadQuery = Type.Object({
  wait: Type.Optional(Type.String({ pattern: WAIT_PATTERN })),
  version: Type.Optional(Type.Union([Type.Literal('current'), Type.Literal('previous')]))
})
export type ReadQuery = Static<typeof ReadQuery>

export const StreamQuery = Type.Object({
  // The default Ajv setup coerces a single ?secret= into an array.
  secret: Type.Optional(Type.Array(Type.String({ pattern: SELECTOR_PATTERN, maxLength: 64 + 253 }), { maxItems: 1000 })),
  since: Type.Optional(Type.String({ maxLength: 200 }))
})
export type StreamQuery = Static<typeof StreamQuery>

/** What a user is told when a path parameter or query value fails its schema; never echoes the value. */
export function invalidMessage (field: string): string {
  switch (field) {
    case 'namespace':
      return 'the namespace must be a DNS-1123 label: at most 63 lowercase letters, digits or "-", starting and ending with a letter or digit'
    case 'name':
      return 'the secret name must be a DNS-1123 subdomain: at most 253 lowercase letters, digits, "-" or ".", each dot-separated part starting and ending with a letter or digit'
    case 'key':
      return 'the key must be a Secret key: at most 253 letters, digits, "-", "_" or ".", and not "." or start with ".."'
    case 'secret':
      return 'each ?secret= must be namespace/name or name (the pod\'s namespace): a DNS-1123 label, "/", then a DNS-1123 subdomain'
    case 'version':
      return 'version must be "previous" (the content before the current one) or "current"'
    case 'since':
      return 'since must be a cursor from an earlier message (at most 200 characters)'
    default:
      return `invalid ${field}`
  }
}

/** Milliseconds of a validated wait value. */
export function parseWait (wait: string): number {
  const match = /^(\d+)(ms|s|m)?$/.exec(wait)
  if (match === null) return Number.NaN
  const n = Number(match[1])
  switch (match[2]) {
    case 'ms': return n
    case 'm': return n * 60_000
    default: return n * 1000
  }
}
