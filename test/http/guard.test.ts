// The guards run before any lookup, for reads, unknown routes and
// WebSocket upgrades alike; names and keys are validated before any lookup.
import t from 'tap'
import { content, HEADERS, injectWebSocket, setup } from './helpers.ts'

const TOKEN = 'correct-horse-battery-staple'

t.test('each guard refuses before any lookup, with its catalogue error', async (t) => {
  const { app, store, lookups } = await setup(t, { allowedHosts: ['secrets.internal', 'Sidecar.Local'] })
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '7' })
  const cases: Array<{ name: string, headers: Record<string, string>, status: number, code?: string }> = [
    { name: 'no anti-SSRF header', headers: { host: 'localhost' }, status: 403, code: 'MISSING_PROXY_HEADER' },
    { name: 'anti-SSRF header not true', headers: { host: 'localhost', 'kube-secret-proxy': 'yes' }, status: 403, code: 'MISSING_PROXY_HEADER' },
    { name: 'anti-SSRF header True', headers: { host: 'localhost', 'kube-secret-proxy': 'True' }, status: 200 },
    { name: 'localhost with a port', headers: { ...HEADERS, host: 'localhost:8642' }, status: 200 },
    { name: 'LOCALHOST', headers: { ...HEADERS, host: 'LOCALHOST' }, status: 200 },
    { name: '127.0.0.1 with a port', headers: { ...HEADERS, host: '127.0.0.1:1' }, status: 200 },
    { name: '[::1] with a port', headers: { ...HEADERS, host: '[::1]:8642' }, status: 200 },
    { name: '[::1]', headers: { ...HEADERS, host: '[::1]' }, status: 200 },
    { name: 'an allowed host', headers: { ...HEADERS, host: 'secrets.internal:80' }, status: 200 },
    { name: 'an allowed host, any case', headers: { ...HEADERS, host: 'sidecar.local' }, status: 200 },
    { name: 'a foreign host', headers: { ...HEADERS, host: 'evil.example' }, status: 403, code: 'HOST_NOT_ALLOWED' },
    { name: 'a rebinding name ending in localhost', headers: { ...HEADERS, host: 'localhost.evil.example' }, status: 403, code: 'HOST_NOT_ALLOWED' },
    { name: 'a prefix of localhost', headers: { ...HEADERS, host: 'localhost.' }, status: 403, code: 'HOST_NOT_ALLOWED' },
    { name: 'another loopback address', headers: { ...HEADERS, host: '127.0.0.2' }, status: 403, code: 'HOST_NOT_ALLOWED' },
    { name: 'a malformed host', headers: { ...HEADERS, host: 'localhost:80:80' }, status: 403, code: 'HOST_NOT_ALLOWED' },
    { name: 'userinfo in the host', headers: { ...HEADERS, host: 'evil@localhost' }, status: 403, code: 'HOST_NOT_ALLOWED' },
    { name: 'an Origin header', headers: { ...HEADERS, host: 'localhost', origin: 'http://localhost:3000' }, status: 403, code: 'ORIGIN_REFUSED' },
    { name: 'Origin: null', headers: { ...HEADERS, host: 'localhost', origin: 'null' }, status: 403, code: 'ORIGIN_REFUSED' }
  ]
  for (const c of cases) {
    lookups.length = 0
    for (const url of ['/v1/secrets/db', '/v1/secrets', '/no/such/route']) {
      const res = await app.inject({ url, headers: c.headers })
      if (c.code === undefined) {
        t.not(res.statusCode, 403, `${c.name}: ${url}`)
        continue
      }
      t.equal(res.statusCode, c.status, `${c.name}: ${url}`)
      t.equal(res.json().code, c.code, `${c.name}: ${url}`)
      t.equal(res.headers['access-control-allow-origin'], undefined)
    }
    if (c.code !== undefined) t.same(lookups, [], `${c.name}: no lookup`)
    else t.same(lookups, ['default/db'], `${c.name}: served`)
  }
})

t.test('the error messages say how to comply', async (t) => {
  const { app } = await setup(t)
  const missing = await app.inject({ url: '/v1/secrets/db', headers: { host: 'localhost' } })
  t.same(missing.json(), {
    code: 'MISSING_PROXY_HEADER',
    message: 'requests must carry the header "Kube-Secret-Proxy: true"; it keeps other software that can be tricked into sending requests (SSRF) away from your secrets: e.g. curl -H "Kube-Secret-Proxy: true" http://127.0.0.1:8642/v1/secrets'
  })
  const host = await app.inject({ url: '/v1/secrets/db', headers: { ...HEADERS, host: 'evil.example:8642' } })
  t.equal(host.json().message, 'Host "evil.example:8642" is not allowed (DNS rebinding guard): use localhost, 127.0.0.1 or [::1], or start the sidecar with --allowed-host for that name')
})

t.test('a bearer token, when configured, is required and compared whatever its length', async (t) => {
  const { app, store, lookups } = await setup(t, { authToken: Buffer.from(TOKEN) })
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '7' })
  const cases: Array<[string, string | undefined, number]> = [
    ['no Authorization', undefined, 401],
    ['a wrong token of the same length', `Bearer ${'x'.repeat(TOKEN.length)}`, 401],
    ['a shorter token', 'Bearer correct', 401],
    ['a longer token', `Bearer ${TOKEN}-and-more`, 401],
    ['Basic auth', `Basic ${Buffer.from(`user:${TOKEN}`).toString('base64')}`, 401],
    ['an empty Bearer', 'Bearer ', 401],
    ['the token', `Bearer ${TOKEN}`, 200],
    ['the token, scheme in lower case', `bearer ${TOKEN}`, 200]
  ]
  for (const [name, authorization, status] of cases) {
    lookups.length = 0
    const headers: Record<string, string> = { ...HEADERS, ...(authorization === undefined ? {} : { authorization }) }
    const res = await app.inject({ url: '/v1/secrets/db', headers })
    t.equal(res.statusCode, status, name)
    if (status === 401) {
      t.same(res.json(), { code: 'UNAUTHORIZED', message: 'this sidecar requires "Authorization: Bearer <token>" with the token from the file its --auth-token-file names' }, name)
      t.equal(res.headers['www-authenticate'], 'Bearer')
      t.notMatch(res.body, TOKEN)
      t.same(lookups, [], `${name}: no lookup`)
    }
  }
})

t.test('WebSocket upgrades pass the same guards before any lookup', async (t) => {
  const { app, lookups } = await setup(t, { authToken: Buffer.from(TOKEN) })
  const auth = { authorization: `Bearer ${TOKEN}` }
  const cases: Array<[string, Record<string, string>, number]> = [
    ['no anti-SSRF header', { ...auth }, 403],
    ['a foreign host', { ...HEADERS, ...auth, host: 'evil.example' }, 403],
    ['an Origin', { ...HEADERS, ...auth, origin: 'https://evil.example' }, 403],
    ['no token', { ...HEADERS }, 401]
  ]
  for (const [name, headers, status] of cases) {
    await t.rejects(app.injectWS('/v1/watch?secret=db', { headers: { host: 'localhost', ...headers } }), { message: `Unexpected server response: ${status}` }, name)
  }
  t.same(lookups, [])
  const ok = await injectWebSocket(t, app, '/v1/watch?secret=db', { ...HEADERS, ...auth })
  t.equal((await ok.messages.next()).type, 'SNAPSHOT')
})

t.test('no CORS header ever, not even for a preflight', async (t) => {
  const { app } = await setup(t)
  const preflight = await app.inject({ method: 'OPTIONS', url: '/v1/secrets/db', headers: { ...HEADERS, origin: 'http://localhost', 'access-control-request-method': 'GET' } })
  t.equal(preflight.statusCode, 403)
  const plain = await app.inject({ method: 'OPTIONS', url: '/v1/secrets/db', headers: HEADERS })
  for (const res of [preflight, plain]) {
    t.same(Object.keys(res.headers).filter((h) => h.startsWith('access-control-')), [])
  }
})

t.test('names, namespaces, keys and query values are validated before any lookup', async (t) => {
  const { app, lookups } = await setup(t)
  const cases: Array<[string, string]> = [
    ['/v1/secrets/DB', 'INVALID_NAME'],
    ['/v1/secrets/a_b', 'INVALID_NAME'],
    ['/v1/secrets/-db', 'INVALID_NAME'],
    ['/v1/secrets/db-', 'INVALID_NAME'],
    ['/v1/secrets/db..x', 'INVALID_NAME'],
    ['/v1/secrets/a%2Fb', 'INVALID_NAME'],
    ['/v1/secrets/db%00', 'INVALID_NAME'],
    [`/v1/secrets/${'a'.repeat(254)}`, 'INVALID_NAME'],
    ['/v1/namespaces/a.b/secrets/db', 'INVALID_NAME'],
    ['/v1/namespaces/Default/secrets/db', 'INVALID_NAME'],
    [`/v1/namespaces/${'a'.repeat(64)}/secrets/db`, 'INVALID_NAME'],
    ['/v1/secrets/db/keys/%2e', 'INVALID_NAME'],
    ['/v1/secrets/db/keys/..x', 'INVALID_NAME'],
    ['/v1/secrets/db/keys/a%2Fb', 'INVALID_NAME'],
    ['/v1/secrets/db/keys/a%20b', 'INVALID_NAME'],
    ['/v1/secrets/db/keys/caf%C3%A9', 'INVALID_NAME'],
    [`/v1/secrets/db/keys/${'k'.repeat(254)}`, 'INVALID_NAME'],
    ['/v1/secrets/db?wait=soon', 'INVALID_WAIT'],
    ['/v1/secrets/db?wait=5h', 'INVALID_WAIT'],
    ['/v1/secrets/db?wait=-1s', 'INVALID_WAIT'],
    ['/v1/secrets/db?version=next', 'INVALID_QUERY'],
    ['/v1/events?secret=Default/db', 'INVALID_NAME'],
    ['/v1/events?secret=db&secret=a_b', 'INVALID_NAME'],
    ['/v1/watch?secret=ns/a/b', 'INVALID_NAME']
  ]
  for (const [url, code] of cases) {
    const res = await app.inject({ url, headers: HEADERS })
    t.equal(res.statusCode, 400, url)
    t.equal(res.json().code, code, url)
  }
  t.same(lookups, [], 'nothing was looked up')
  const wait = await app.inject({ url: '/v1/secrets/db?wait=soon', headers: HEADERS })
  t.equal(wait.json().message, 'wait="soon" is not a duration: use seconds such as wait=30s (capped by --max-wait)')
  const name = await app.inject({ url: '/v1/secrets/DB', headers: HEADERS })
  t.match(name.json().message, /^the secret name must be a DNS-1123 subdomain/)
})

t.test('valid names reach the store', async (t) => {
  const { app, lookups } = await setup(t)
  const cases: Array<[string, number, string]> = [
    [`/v1/secrets/${'a'.repeat(253)}`, 404, 'SECRET_NOT_CONFIGURED'],
    ['/v1/secrets/db.example-1', 404, 'SECRET_NOT_CONFIGURED'],
    [`/v1/namespaces/${'n'.repeat(63)}/secrets/db`, 404, 'SECRET_NOT_CONFIGURED'],
    ['/v1/secrets/db/keys/.dotfile', 503, 'SECRET_NOT_LOADED'],
    ['/v1/secrets/db/keys/tls.crt', 503, 'SECRET_NOT_LOADED'],
    [`/v1/secrets/db/keys/${'K_-.'.repeat(63)}`, 503, 'SECRET_NOT_LOADED'],
    ['/v1/events?secret=other/missing', 404, 'SECRET_NOT_CONFIGURED'],
    ['/v1/watch?secret=missing', 404, 'SECRET_NOT_CONFIGURED']
  ]
  for (const [url, status, code] of cases) {
    const res = await app.inject({ url, headers: HEADERS })
    t.equal(res.statusCode, status, url)
    t.equal(res.json().code, code, url)
  }
  t.equal(lookups.length, cases.length)
})
