// The store as its readers see it: states, content versions, previous
// content, change notifications and resume by cursor.
import t from 'tap'
import { createSecretStore, type SecretContent, type StoreChange } from '../../proxy/store/secret-store.ts'

function content (data: Record<string, string>, type = 'Opaque'): SecretContent {
  return { type, data: new Map(Object.entries(data).map(([k, v]) => [k, Buffer.from(v)])) }
}

function setup (options: { keepPreviousMs?: number, historySize?: number } = {}) {
  let now = new Date('2024-01-01T00:00:00Z')
  const store = createSecretStore({
    secrets: [
      { namespace: 'default', name: 'db', optional: false },
      { namespace: 'default', name: 'api', optional: true }
    ],
    clock: () => now,
    bootId: 'boot1',
    ...options
  })
  const changes: StoreChange[] = []
  const unsubscribe = store.subscribe((change) => { changes.push(change) })
  return {
    store,
    changes,
    unsubscribe,
    advance: (ms: number) => { now = new Date(now.getTime() + ms) }
  }
}

t.test('a configured secret starts pending, unloaded and not ready', async (t) => {
  const { store, changes } = setup()
  const db = store.get('default/db')
  t.equal(db?.state, 'pending')
  t.equal(db?.content, undefined)
  t.equal(db?.version, undefined)
  t.equal(db?.loaded, false)
  t.equal(store.get('default/other'), undefined)
  t.same(store.entries().map((e) => e.id), ['default/db', 'default/api'])
  t.equal(store.ready(), false)
  t.equal(store.cursor, 'boot1-0')
  t.same(changes, [])
})

t.test('content makes a MODIFIED change and a new content version', async (t) => {
  const { store, changes } = setup()
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '10' })
  const db = store.get('default/db')!
  t.equal(db.state, 'synced')
  t.equal(db.loaded, true)
  t.equal(db.resourceVersion, '10')
  t.equal(db.version, 'boot1-1')
  t.equal(db.content?.data.get('password')?.toString(), 'one')
  t.same(changes.map((c) => [c.type, c.cursor, c.entry.id]), [['MODIFIED', 'boot1-1', 'default/db']])
  t.equal(store.cursor, 'boot1-1')
  t.equal(store.ready(), true, 'the optional secret does not hold readiness back')
})

t.test('the same content again (label edit, relist) changes neither the version nor subscribers', async (t) => {
  const { store, changes } = setup()
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '10' })
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '11' })
  store.apply({ type: 'synced', id: 'default/db', resourceVersion: '12' })
  const db = store.get('default/db')!
  t.equal(db.version, 'boot1-1')
  t.equal(db.resourceVersion, '12')
  t.equal(changes.length, 1)
})

t.test('a type or data change makes a new version', async (t) => {
  const { store, changes } = setup()
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '10' })
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }, 'kubernetes.io/basic-auth'), resourceVersion: '11' })
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one', user: 'u' }, 'kubernetes.io/basic-auth'), resourceVersion: '12' })
  t.same(changes.map((c) => c.entry.version), ['boot1-1', 'boot1-2', 'boot1-3'])
})

t.test('stale keeps the value and FRESH follows a sync or the same content', async (t) => {
  const { store, changes } = setup()
  store.apply({ type: 'stale', id: 'default/db' })
  t.equal(store.get('default/db')?.state, 'pending', 'a pending secret cannot go stale')
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '10' })
  store.apply({ type: 'stale', id: 'default/db' })
  store.apply({ type: 'stale', id: 'default/db' })
  t.equal(store.get('default/db')?.state, 'stale')
  t.equal(store.get('default/db')?.content?.data.get('password')?.toString(), 'one')
  store.apply({ type: 'synced', id: 'default/db' })
  store.apply({ type: 'stale', id: 'default/db' })
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '11' })
  t.same(changes.map((c) => c.type), ['MODIFIED', 'STALE', 'FRESH', 'STALE', 'FRESH'])
  t.equal(store.get('default/db')?.version, 'boot1-1')
})

t.test('deleted drops the content until the secret is recreated', async (t) => {
  const { store, changes } = setup({ keepPreviousMs: 60_000 })
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '10' })
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'two' }), resourceVersion: '11' })
  store.apply({ type: 'deleted', id: 'default/db' })
  store.apply({ type: 'deleted', id: 'default/db' })
  const db = store.get('default/db')!
  t.equal(db.state, 'deleted')
  t.equal(db.content, undefined)
  t.equal(db.version, undefined)
  t.equal(db.loaded, true)
  t.equal(store.previous('default/db'), undefined, 'no previous content outlives a delete')
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'two' }), resourceVersion: '20' })
  t.equal(store.get('default/db')?.state, 'synced')
  t.same(changes.map((c) => c.type), ['MODIFIED', 'MODIFIED', 'DELETED', 'MODIFIED'])
})

t.test('forbidden drops the value and the previous content, and names the reason', async (t) => {
  const { store, changes } = setup({ keepPreviousMs: 60_000 })
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '10' })
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'two' }), resourceVersion: '11' })
  store.apply({ type: 'forbidden', id: 'default/db', reason: 'get secrets default/db' })
  store.apply({ type: 'forbidden', id: 'default/db', reason: 'get secrets default/db' })
  const db = store.get('default/db')!
  t.equal(db.state, 'forbidden')
  t.equal(db.forbiddenReason, 'get secrets default/db')
  t.equal(db.content, undefined)
  t.equal(store.previous('default/db'), undefined)
  t.equal(store.ready(), false)
  t.same(changes.map((c) => c.type), ['MODIFIED', 'MODIFIED', 'FORBIDDEN'])
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'two' }), resourceVersion: '12' })
  t.equal(store.get('default/db')?.forbiddenReason, undefined)
  t.equal(store.ready(), true)
})

t.test('previous content is kept for its window, then expires', async (t) => {
  const { store, advance } = setup({ keepPreviousMs: 1000 })
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '10' })
  t.equal(store.previous('default/db'), undefined, 'nothing before the first content')
  advance(10)
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'two' }), resourceVersion: '11' })
  const previous = store.previous('default/db')!
  t.equal(previous.version, 'boot1-1')
  t.equal(previous.resourceVersion, '10')
  t.equal(previous.content.data.get('password')?.toString(), 'one')
  t.equal(previous.expiresAt.toISOString(), '2024-01-01T00:00:01.010Z')
  advance(999)
  t.ok(store.previous('default/db'))
  advance(1)
  t.equal(store.previous('default/db'), undefined)
  t.ok(store.get('default/db')?.previous, 'still held until expirePrevious')
  store.expirePrevious()
  t.equal(store.get('default/db')?.previous, undefined)
})

t.test('no previous content is kept when the window is 0', async (t) => {
  const { store } = setup()
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '10' })
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'two' }), resourceVersion: '11' })
  t.equal(store.previous('default/db'), undefined)
})

t.test('changesSince replays the latest change per secret after a cursor', async (t) => {
  const { store } = setup()
  const start = store.cursor
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '10' })
  store.apply({ type: 'content', id: 'default/api', content: content({ token: 'a' }), resourceVersion: '11' })
  const middle = store.cursor
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'two' }), resourceVersion: '12' })
  store.apply({ type: 'deleted', id: 'default/api' })
  const summary = (changes: StoreChange[] | undefined) => changes?.map((c) => [c.type, c.cursor, c.entry.id])
  t.same(summary(store.changesSince(start)), [['MODIFIED', 'boot1-3', 'default/db'], ['DELETED', 'boot1-4', 'default/api']])
  t.same(summary(store.changesSince(middle)), [['MODIFIED', 'boot1-3', 'default/db'], ['DELETED', 'boot1-4', 'default/api']])
  t.same(summary(store.changesSince('boot1-3')), [['DELETED', 'boot1-4', 'default/api']])
  t.same(summary(store.changesSince(store.cursor)), [])
  t.equal(store.changesSince('boot2-1'), undefined, 'another boot')
  t.equal(store.changesSince('boot1-99'), undefined, 'the future')
  t.equal(store.changesSince('nonsense'), undefined)
})

t.test('changesSince replays a missed content change before a STALE or FRESH', async (t) => {
  const { store } = setup()
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'one' }), resourceVersion: '10' })
  const seen = store.cursor
  store.apply({ type: 'content', id: 'default/db', content: content({ password: 'two' }), resourceVersion: '11' })
  store.apply({ type: 'stale', id: 'default/db' })
  const changes = store.changesSince(seen)!
  t.same(changes.map((c) => [c.type, c.cursor]), [['MODIFIED', 'boot1-2'], ['STALE', 'boot1-3']])
  t.equal(changes[0]?.entry.content?.data.get('password')?.toString(), 'two')
  t.same(store.changesSince('boot1-2')?.map((c) => c.type), ['STALE'], 'nothing to replay when the content change was seen')
})

t.test('changesSince refuses a cursor older than the kept history', async (t) => {
  const { store } = setup({ historySize: 2 })
  for (let i = 0; i < 10; i++) store.apply({ type: 'content', id: 'default/db', content: content({ n: String(i) }), resourceVersion: String(i) })
  t.equal(store.changesSince('boot1-0'), undefined)
  t.same(store.changesSince('boot1-8')?.map((c) => c.cursor), ['boot1-10'])
})

t.test('events for unknown secrets are ignored', async (t) => {
  const { store, changes } = setup()
  store.apply({ type: 'content', id: 'default/unknown', content: content({ a: 'b' }), resourceVersion: '1' })
  t.same(changes, [])
  t.equal(store.get('default/unknown'), undefined)
})

t.test('every listener hears a change even when one throws; unsubscribe stops delivery', async (t) => {
  const { store, changes, unsubscribe } = setup()
  const heard: string[] = []
  const stop = store.subscribe(() => { throw new Error('listener bug') })
  store.subscribe((c) => { heard.push(c.type) })
  t.throws(() => store.apply({ type: 'content', id: 'default/db', content: content({ a: 'b' }), resourceVersion: '1' }), /listener bug/)
  t.same(heard, ['MODIFIED'])
  t.equal(changes.length, 1)
  t.equal(store.get('default/db')?.state, 'synced', 'the change itself is applied')
  stop()
  unsubscribe()
  store.apply({ type: 'stale', id: 'default/db' })
  t.same(heard, ['MODIFIED', 'STALE'])
  t.equal(changes.length, 1)
})
