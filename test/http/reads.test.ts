// Reads as the app sees them: the list, one secret, one key, ETags, 304s,
// the long-poll, previous content and every state of a secret.
import t from 'tap'
import { b64, content, HEADERS, setup } from './helpers.ts'

t.test('GET /v1/secrets lists every configured secret with its state and key names, never a value', async (t) => {
  const { app, store } = await setup(t)
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'hunter2', user: 'app' }), resourceVersion: '7' })
  store.apply({ type: 'forbidden', id: 'other/tls', reason: 'get secrets tls in namespace other' })
  const res = await app.inject({ url: '/v1/secrets', headers: HEADERS })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  t.notMatch(res.body, 'hunter2')
  t.notMatch(res.body, b64('hunter2'))
  t.same(res.json(), {
    cursor: 'boot1-2',
    secrets: [
      { namespace: 'default', name: 'db', optional: false, state: 'synced', type: 'Opaque', version: 'boot1-1', resourceVersion: '7', keys: ['password', 'user'], updatedAt: '2024-01-01T00:00:00.000Z', syncedAt: '2024-01-01T00:00:00.000Z' },
      { namespace: 'default', name: 'api', optional: true, state: 'pending', type: null, version: null, resourceVersion: null, keys: [], updatedAt: null, syncedAt: null },
      { namespace: 'other', name: 'tls', optional: false, state: 'forbidden', type: null, version: null, resourceVersion: null, keys: [], updatedAt: null, syncedAt: null, forbiddenReason: 'get secrets tls in namespace other' }
    ]
  })
})

t.test('a synced secret is served as JSON with data base64, its ETag and no-store', async (t) => {
  const { app, store } = await setup(t)
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'hunter2', bin: Buffer.from([0, 255, 10]) }, 'kubernetes.io/basic-auth'), resourceVersion: '7' })
  for (const url of ['/v1/secrets/db', '/v1/namespaces/default/secrets/db']) {
    const res = await app.inject({ url, headers: HEADERS })
    t.equal(res.statusCode, 200, url)
    t.equal(res.headers.etag, '"boot1-1"')
    t.equal(res.headers['cache-control'], 'no-store')
    t.match(res.headers['content-type'], /^application\/json/)
    t.equal(res.headers['kube-secret-proxy-stale'], undefined)
    t.same(res.json(), {
      namespace: 'default',
      name: 'db',
      type: 'kubernetes.io/basic-auth',
      resourceVersion: '7',
      version: 'boot1-1',
      updatedAt: '2024-01-01T00:00:00.000Z',
      data: { password: b64('hunter2'), bin: Buffer.from([0, 255, 10]).toString('base64') }
    })
  }
  const other = await app.inject({ url: '/v1/namespaces/other/secrets/tls', headers: HEADERS })
  t.equal(other.statusCode, 503, 'another namespace is addressed by its path')
})

t.test('a key is served as its raw bytes with the secret\'s ETag', async (t) => {
  const { app, store } = await setup(t)
  const bytes = Buffer.from([0, 1, 2, 255, 254, 10, 13])
  store.apply({ type: 'content', id: 'default/db', content: content({ 'tls.key': bytes, password: 'hunter2' }), resourceVersion: '7' })
  const res = await app.inject({ url: '/v1/secrets/db/keys/tls.key', headers: HEADERS })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'application/octet-stream')
  t.equal(res.headers.etag, '"boot1-1"')
  t.equal(res.headers['cache-control'], 'no-store')
  t.same(res.rawPayload, bytes)
  const missing = await app.inject({ url: '/v1/namespaces/default/secrets/db/keys/username', headers: HEADERS })
  t.equal(missing.statusCode, 404)
  t.same(missing.json(), { code: 'KEY_NOT_FOUND', message: 'secret default/db has no key username' })
})

t.test('If-None-Match with the current ETag answers 304; any other tag gets the content', async (t) => {
  const { app, store } = await setup(t)
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '7' })
  const cases: Array<[string, number]> = [
    ['"boot1-1"', 304],
    ['W/"boot1-1"', 304],
    ['"other", "boot1-1"', 304],
    ['boot1-1', 304],
    ['*', 304],
    ['"boot1-0"', 200],
    ['"boot2-1"', 200]
  ]
  for (const [tag, status] of cases) {
    for (const url of ['/v1/secrets/db', '/v1/secrets/db/keys/password']) {
      const res = await app.inject({ url, headers: { ...HEADERS, 'if-none-match': tag } })
      t.equal(res.statusCode, status, `${url} If-None-Match: ${tag}`)
      t.equal(res.headers.etag, '"boot1-1"')
      if (status === 304) t.equal(res.body, '')
    }
  }
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'two' }), resourceVersion: '8' })
  const changed = await app.inject({ url: '/v1/secrets/db', headers: { ...HEADERS, 'if-none-match': '"boot1-1"' } })
  t.equal(changed.statusCode, 200)
  t.equal(changed.headers.etag, '"boot1-2"')
  t.equal(changed.json().data.password, b64('two'))
})

t.test('a label-only update keeps the ETag', async (t) => {
  const { app, store } = await setup(t)
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '7' })
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '9' })
  const res = await app.inject({ url: '/v1/secrets/db', headers: { ...HEADERS, 'if-none-match': '"boot1-1"' } })
  t.equal(res.statusCode, 304)
})

t.test('long-poll: answers 200 as soon as the content differs', async (t) => {
  const { app, store, log } = await setup(t)
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '7' })
  const pending = app.inject({ url: '/v1/secrets/db?wait=30s', headers: { ...HEADERS, 'if-none-match': '"boot1-1"' } })
  await log.waitFor((l) => l.msg === 'long-poll waiting')
  // Neither a relist with the same content nor another secret's change wakes it.
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '8' })
  store.apply({ type: 'content', id: 'default/api', content: content({ token: 't' }), resourceVersion: '9' })
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'two' }), resourceVersion: '10' })
  const res = await pending
  t.equal(res.statusCode, 200)
  t.equal(res.headers.etag, '"boot1-3"')
  t.equal(res.json().data.password, b64('two'))
  t.equal(res.json().resourceVersion, '10')
})

t.test('long-poll on a key wakes on a content change too', async (t) => {
  const { app, store, log } = await setup(t)
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '7' })
  const pending = app.inject({ url: '/v1/secrets/db/keys/password?wait=30s', headers: { ...HEADERS, 'if-none-match': '"boot1-1"' } })
  await log.waitFor((l) => l.msg === 'long-poll waiting')
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'two' }), resourceVersion: '8' })
  const res = await pending
  t.equal(res.statusCode, 200)
  t.equal(res.body, 'two')
  t.equal(res.headers.etag, '"boot1-2"')
})

t.test('long-poll: 304 when the wait ends, the wait capped by maxWaitMs', async (t) => {
  const { app, store } = await setup(t, { maxWaitMs: 50 })
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '7' })
  const started = Date.now()
  const res = await app.inject({ url: '/v1/secrets/db?wait=3600s', headers: { ...HEADERS, 'if-none-match': '"boot1-1"' } })
  t.equal(res.statusCode, 304)
  t.equal(res.headers.etag, '"boot1-1"')
  t.ok(Date.now() - started < 5000, 'the cap, not the asked hour')
})

t.test('long-poll: going stale does not wake it, a deletion does', async (t) => {
  const { app, store, log } = await setup(t)
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '7' })
  const pending = app.inject({ url: '/v1/secrets/db?wait=30s', headers: { ...HEADERS, 'if-none-match': '"boot1-1"' } })
  await log.waitFor((l) => l.msg === 'long-poll waiting')
  store.apply({ type: 'stale', id: 'default/db' })
  store.apply({ type: 'deleted', id: 'default/db' })
  const res = await pending
  t.equal(res.statusCode, 404)
  t.equal(res.json().code, 'SECRET_NOT_FOUND')
})

t.test('wait without If-None-Match, or with a tag that differs, answers at once', async (t) => {
  const { app, store } = await setup(t)
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '7' })
  const plain = await app.inject({ url: '/v1/secrets/db?wait=30s', headers: HEADERS })
  t.equal(plain.statusCode, 200)
  const differs = await app.inject({ url: '/v1/secrets/db?wait=30s', headers: { ...HEADERS, 'if-none-match': '"old"' } })
  t.equal(differs.statusCode, 200)
})

t.test('a client that hangs up stops its long-poll', async (t) => {
  const { app, store, log } = await setup(t)
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '7' })
  const abort = new AbortController()
  const pending = app.inject({ url: '/v1/secrets/db?wait=30s', headers: { ...HEADERS, 'if-none-match': '"boot1-1"' }, signal: abort.signal })
  await log.waitFor((l) => l.msg === 'long-poll waiting')
  abort.abort()
  await t.rejects(pending)
  const woke = await log.waitFor((l) => l.msg === 'long-poll woke')
  t.equal(woke.outcome, 'gone')
})

t.test('?version=previous serves the content before the current one until its window closes', async (t) => {
  const { app, store, advance } = await setup(t, { keepPreviousMs: 60_000 })
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '7' })
  const none = await app.inject({ url: '/v1/secrets/db?version=previous', headers: HEADERS })
  t.equal(none.statusCode, 404)
  t.equal(none.json().code, 'PREVIOUS_EXPIRED')
  t.equal(none.json().message, 'secret default/db has no previous content: none is kept (--keep-previous is 0) or its window has closed')

  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'two' }), resourceVersion: '8' })
  const previous = await app.inject({ url: '/v1/secrets/db?version=previous', headers: HEADERS })
  t.equal(previous.statusCode, 200)
  t.equal(previous.headers.etag, '"boot1-1"')
  t.same(previous.json(), { namespace: 'default', name: 'db', type: 'Opaque', resourceVersion: '7', version: 'boot1-1', updatedAt: '2024-01-01T00:00:00.000Z', data: { password: b64('one') } })
  const key = await app.inject({ url: '/v1/secrets/db/keys/password?version=previous', headers: HEADERS })
  t.equal(key.body, 'one')
  const notModified = await app.inject({ url: '/v1/secrets/db?version=previous', headers: { ...HEADERS, 'if-none-match': '"boot1-1"' } })
  t.equal(notModified.statusCode, 304)
  const current = await app.inject({ url: '/v1/secrets/db?version=current', headers: HEADERS })
  t.equal(current.json().data.password, b64('two'))

  advance(60_000)
  const expired = await app.inject({ url: '/v1/secrets/db?version=previous', headers: HEADERS })
  t.equal(expired.statusCode, 404)
  t.equal(expired.json().code, 'PREVIOUS_EXPIRED')
})

t.test('each state answers as the user needs it', async (t) => {
  const { app, store } = await setup(t)
  const read = async (url: string) => await app.inject({ url, headers: HEADERS })

  let res = await read('/v1/secrets/db')
  t.equal(res.statusCode, 503, 'pending')
  t.same(res.json(), { code: 'SECRET_NOT_LOADED', message: 'secret default/db has not been loaded from the API server yet: retry shortly, or wait on /readyz of the metrics listener' })
  t.equal((await read('/v1/secrets/db/keys/password')).statusCode, 503)

  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '7' })
  store.apply({ type: 'stale', id: 'default/db' })
  res = await read('/v1/secrets/db')
  t.equal(res.statusCode, 200, 'stale is still served')
  t.equal(res.headers['kube-secret-proxy-stale'], 'true')
  t.equal(res.json().data.password, b64('one'))
  res = await read('/v1/secrets/db/keys/password')
  t.equal(res.headers['kube-secret-proxy-stale'], 'true')
  res = await app.inject({ url: '/v1/secrets/db', headers: { ...HEADERS, 'if-none-match': '"boot1-1"' } })
  t.equal(res.statusCode, 304)
  t.equal(res.headers['kube-secret-proxy-stale'], 'true', 'a 304 says stale too')

  store.apply({ type: 'synced', id: 'default/db' })
  t.equal((await read('/v1/secrets/db')).headers['kube-secret-proxy-stale'], undefined, 'fresh again')

  store.apply({ type: 'deleted', id: 'default/db' })
  res = await read('/v1/secrets/db')
  t.equal(res.statusCode, 404, 'deleted')
  t.same(res.json(), { code: 'SECRET_NOT_FOUND', message: 'secret default/db does not exist in the API server (deleted or not created yet); it is served again as soon as it exists' })
  t.equal((await read('/v1/secrets/db/keys/password')).statusCode, 404)

  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'two' }), resourceVersion: '9' })
  t.equal((await read('/v1/secrets/db')).statusCode, 200, 'recreated')

  store.apply({ type: 'forbidden', id: 'default/db', reason: 'get on secrets/db in namespace default is no longer allowed' })
  res = await read('/v1/secrets/db')
  t.equal(res.statusCode, 403, 'forbidden')
  t.same(res.json(), { code: 'SECRET_FORBIDDEN', message: 'the sidecar may no longer read secret default/db: get on secrets/db in namespace default is no longer allowed' })
  t.equal((await read('/v1/secrets/db?version=previous')).statusCode, 403)
  t.equal((await read('/v1/secrets/db/keys/password')).statusCode, 403)
})

t.test('an unconfigured secret is 404 SECRET_NOT_CONFIGURED', async (t) => {
  const { app } = await setup(t)
  for (const url of ['/v1/secrets/unknown', '/v1/namespaces/kube-system/secrets/db', '/v1/secrets/unknown/keys/password']) {
    const res = await app.inject({ url, headers: HEADERS })
    t.equal(res.statusCode, 404, url)
    t.equal(res.json().code, 'SECRET_NOT_CONFIGURED')
  }
  const res = await app.inject({ url: '/v1/namespaces/kube-system/secrets/db', headers: HEADERS })
  t.match(res.json().message, /^secret kube-system\/db is not served by this sidecar/)
})

t.test('unknown routes and methods are 404 NOT_FOUND as JSON', async (t) => {
  const { app } = await setup(t)
  const res = await app.inject({ url: '/v2/secrets?x=1', headers: HEADERS })
  t.equal(res.statusCode, 404)
  t.same(res.json(), { code: 'NOT_FOUND', message: 'no route GET /v2/secrets: see the HTTP API in the README (GET /v1/secrets lists what is served)' })
  const post = await app.inject({ method: 'POST', url: '/v1/secrets/db', headers: HEADERS, payload: {} })
  t.equal(post.statusCode, 404)
  t.equal(post.json().code, 'NOT_FOUND')
  const plainWatch = await app.inject({ url: '/v1/watch', headers: HEADERS })
  t.equal(plainWatch.statusCode, 426)
  t.equal(plainWatch.json().code, 'UPGRADE_REQUIRED')
})
