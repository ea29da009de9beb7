// What leaves the process besides the values themselves: the access log,
// error bodies and metric labels never carry a secret value or a token.
import t from 'tap'
import { b64, connectSse, content, HEADERS, injectWebSocket, listenLocal, setup } from './helpers.ts'

const CANARY = 'canary-7f3a9c "quoted"\\slash\nnewline-é-☃'
const CANARY_FORMS = {
  raw: CANARY,
  base64: Buffer.from(CANARY).toString('base64'),
  hex: Buffer.from(CANARY).toString('hex'),
  json: JSON.stringify(CANARY).slice(1, -1)
}
const TOKEN = 'bearer-canary-5d1e0b'

/** Which canary forms (or the token) a text carries. */
function leaks (text: string): string[] {
  return Object.entries({ ...CANARY_FORMS, token: TOKEN }).filter(([, value]) => text.includes(value)).map(([form]) => form)
}

t.test('no secret value or token in any log line, error body or metric label', async (t) => {
  const { app, store, log, metrics } = await setup(t, { authToken: Buffer.from(TOKEN), keepPreviousMs: 60_000 })
  const auth = { ...HEADERS, authorization: `Bearer ${TOKEN}` }
  store.apply({ type: 'content', id: 'default/db', content: content({ password: CANARY }), resourceVersion: '7' })
  store.apply({ type: 'content', id: 'default/db', content: content({ password: CANARY, other: 'x' }), resourceVersion: '8' })

  const served: string[] = []
  const errorBodies: string[] = []
  const read = async (url: string, headers: Record<string, string> = auth) => {
    const res = await app.inject({ url, headers })
    if (res.statusCode >= 400) errorBodies.push(res.body)
    else served.push(res.body)
    return res
  }
  t.equal((await read('/v1/secrets')).statusCode, 200)
  t.equal((await read('/v1/secrets/db')).json().data.password, b64(CANARY), 'the value is served')
  t.equal((await read('/v1/secrets/db/keys/password')).body, CANARY)
  t.equal((await read('/v1/secrets/db?version=previous')).statusCode, 200)
  t.equal((await app.inject({ url: '/v1/secrets/db', headers: { ...auth, 'if-none-match': '"boot1-2"' } })).statusCode, 304)
  await read('/v1/secrets/db/keys/nope')
  await read('/v1/secrets/db', { ...HEADERS, authorization: `Bearer ${TOKEN}x` })
  await read('/v1/secrets/db', { ...HEADERS, authorization: `Bearer ${CANARY_FORMS.base64}` })
  await read('/v1/secrets/db', { host: 'localhost', authorization: `Bearer ${TOKEN}` })
  await read('/v1/secrets/db', { ...auth, origin: 'http://localhost' })
  await read('/v1/secrets/db?wait=never', auth)
  await read('/v1/nothing-here', auth)

  const ws = await injectWebSocket(t, app, '/v1/watch', auth)
  t.match(await ws.messages.next(), { data: { password: b64(CANARY) } })
  const port = await listenLocal(app)
  const sse = await connectSse(t, port, '/v1/events?secret=db', { authorization: `Bearer ${TOKEN}` })
  await sse.events.next()
  store.apply({ type: 'content', id: 'default/db', content: content({ password: `${CANARY}-2` }), resourceVersion: '9' })
  await sse.events.next()
  store.apply({ type: 'forbidden', id: 'default/db', reason: 'get on secrets/db in namespace default' })
  await read('/v1/secrets/db')
  sse.req.destroy()
  await log.waitFor((l) => l.msg === 'stream closed' && l.route === '/v1/events')

  t.ok(served.some((body) => body.includes(CANARY_FORMS.base64)), 'the canary was really served')
  t.ok(log.raw.length > 10, `the captured log is not empty (${log.raw.length} lines)`)
  t.same(log.raw.filter((line) => leaks(line).length > 0), [], 'no log line carries a value or the token')
  t.ok(errorBodies.length >= 7, 'errors were answered')
  t.same(errorBodies.filter((body) => leaks(body).length > 0), [], 'no error body carries a value or the token')
  t.same(leaks(JSON.stringify(metrics.calls)), [], 'no metric label carries a value or the token')
  for (const line of log.lines()) {
    t.equal(line.req, undefined, 'no request object (headers) logged')
    t.equal(line.headers, undefined)
  }
})

t.test('one access log line per read: route, secret, key, status and bytes', async (t) => {
  const { app, store, log, metrics } = await setup(t)
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'hunter2' }), resourceVersion: '7' })
  const json = await app.inject({ url: '/v1/namespaces/default/secrets/db', headers: HEADERS })
  await app.inject({ url: '/v1/secrets/db/keys/password', headers: HEADERS })
  await app.inject({ url: '/v1/secrets/api', headers: HEADERS })
  await app.inject({ url: '/v1/secrets/db', headers: { ...HEADERS, 'if-none-match': '"boot1-1"' } })
  await app.inject({ url: '/v1/secrets/db', headers: { host: 'localhost' } })
  await app.inject({ url: '/v1/nothing?x=y', headers: HEADERS })
  const reads = log.lines().filter((l) => l.msg === 'read').map(({ route, secret, key, status, bytes }) => ({ route, secret, key, status, bytes }))
  t.same(reads, [
    { route: '/v1/namespaces/:namespace/secrets/:name', secret: 'default/db', key: undefined, status: 200, bytes: json.rawPayload.length },
    { route: '/v1/secrets/:name/keys/:key', secret: 'default/db', key: 'password', status: 200, bytes: 7 },
    { route: '/v1/secrets/:name', secret: 'default/api', key: undefined, status: 503, bytes: reads[2]?.bytes },
    { route: '/v1/secrets/:name', secret: 'default/db', key: undefined, status: 304, bytes: 0 },
    { route: '/v1/secrets/:name', secret: undefined, key: undefined, status: 403, bytes: reads[4]?.bytes },
    { route: 'unmatched', secret: undefined, key: undefined, status: 404, bytes: reads[5]?.bytes }
  ])
  t.equal(log.lines().filter((l) => l.level === 30).length, reads.length, 'nothing else at info level')
  t.match(metrics.of('request'), [
    ['/v1/namespaces/:namespace/secrets/:name', 200, Number],
    ['/v1/secrets/:name/keys/:key', 200, Number],
    ['/v1/secrets/:name', 503, Number],
    ['/v1/secrets/:name', 304, Number],
    ['/v1/secrets/:name', 403, Number],
    ['unmatched', 404, Number]
  ], 'metrics are labelled by route pattern, never by URL')
})
