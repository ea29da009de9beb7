// Dynamic secrets: what --allow permits is added on demand and evicted by
// recency within the count and byte bounds; configured secrets never are.
import t from 'tap'
import { createSecretStore, type SecretEntry } from '../../proxy/store/secret-store.ts'

const content = (bytes: number) => ({ type: 'Opaque', data: new Map([['v', Buffer.alloc(bytes, 1)]]) })

function setup (bounds: { cacheMaxSecrets?: number, cacheMaxBytes?: number } = {}) {
  const store = createSecretStore({ secrets: [{ namespace: 'apps', name: 'configured', optional: false }], allow: ['apps/db-*'], ...bounds })
  const added: string[] = []
  const removed: string[] = []
  store.onDemand({ added: (e: SecretEntry) => added.push(e.id), removed: (e: SecretEntry) => removed.push(e.id) })
  return { store, added, removed }
}

t.test('demand serves configured and allowed secrets, nothing else', async (t) => {
  const { store, added } = setup()
  t.equal(store.demand('apps', 'configured')?.dynamic, false)
  const dynamic = store.demand('apps', 'db-main')
  t.equal(dynamic?.state, 'pending')
  t.equal(dynamic?.dynamic, true)
  t.equal(store.demand('apps', 'api'), undefined, 'not matching the pattern')
  t.equal(store.demand('other', 'db-main'), undefined, 'not in the allowed namespace')
  t.equal(store.demand('apps', 'db-main')?.id, 'apps/db-main')
  t.same(added, ['apps/db-main'], 'the source hears once')
  t.notOk(store.ready(), 'the configured secret still holds readiness back')
  store.apply({ type: 'content', id: 'apps/configured', content: content(1), resourceVersion: '1' })
  t.ok(store.ready(), 'a pending or forbidden dynamic secret does not')
  store.apply({ type: 'forbidden', id: 'apps/db-main', reason: 'no' })
  t.ok(store.ready())
})

t.test('the least recently read dynamic secret is evicted at the count bound', async (t) => {
  const { store, removed } = setup({ cacheMaxSecrets: 2 })
  store.demand('apps', 'db-a')
  store.demand('apps', 'db-b')
  store.demand('apps', 'db-a') // read again: db-b is now the least recent
  store.demand('apps', 'db-c')
  t.same(removed, ['apps/db-b'])
  t.equal(store.get('apps/db-b'), undefined)
  t.same(store.entries().map((e) => e.id).sort(), ['apps/configured', 'apps/db-a', 'apps/db-c'])
  store.apply({ type: 'content', id: 'apps/db-b', content: content(1), resourceVersion: '1' })
  t.equal(store.get('apps/db-b'), undefined, 'a late event for an evicted secret is dropped')
  t.equal(store.dynamicSize().entries, 2)
})

t.test('the byte bound evicts by data size; an overwrite evicts nothing', async (t) => {
  const { store, removed } = setup({ cacheMaxBytes: 1000 })
  store.demand('apps', 'db-a')
  store.demand('apps', 'db-b')
  store.apply({ type: 'content', id: 'apps/db-a', content: content(400), resourceVersion: '1' })
  store.apply({ type: 'content', id: 'apps/db-a', content: content(500), resourceVersion: '2' })
  t.same(removed, [], 'a content change updates the size, it does not release')
  t.same(store.dynamicSize(), { entries: 2, bytes: 500 })
  store.apply({ type: 'content', id: 'apps/db-b', content: content(600), resourceVersion: '3' })
  t.same(removed, ['apps/db-a'], '500 + 600 > 1000: the older one goes')
  t.same(store.dynamicSize(), { entries: 1, bytes: 600 })
})
