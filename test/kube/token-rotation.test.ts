// The kubelet rotates the projected token: a token bound to an object stops
// authenticating when the object goes, and the source must carry on with the
// new token the kubelet wrote, re-reading it after a 401.
import t from 'tap'
import { ControlPlane } from '../cluster/control-plane.ts'
import { waitFor } from '../cluster/helpers.ts'
import { appWithRole, entryWhen, startSource, valueOf } from './fixtures.ts'

const plane = await ControlPlane.start()
t.teardown(() => plane.stop())

const whoami = { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' }

t.test('a rotated token is picked up after a 401 and updates keep coming', async (t) => {
  const ns = await plane.namespace('rotate')
  await plane.createServiceAccount(ns, 'app')
  const anchor = await plane.createSecret(ns, 'anchor', { x: 'y' })
  const oldToken = await plane.mintToken(ns, 'app', { expirationSeconds: 600, boundObject: { kind: 'Secret', name: 'anchor', uid: anchor.metadata.uid } })
  const app = await appWithRole(plane, 'rotate', ['db'], ['get', 'list', 'watch'], { namespace: ns, token: oldToken })
  await plane.createSecret(ns, 'db', { password: 'one' })
  // Only a 401 makes the client look at the file again: this tests that path.
  const running = startSource(app, ['db'], { mode: 'watch', backoff: { initialMs: 100, maxMs: 500 } }, { tokenCheckIntervalMs: 3_600_000 })
  t.teardown(() => running.close())
  const id = `${ns}/db`
  await entryWhen(running.store, id, 'loaded', (e) => e.state === 'synced')

  const newToken = await plane.mintToken(ns, 'app', { expirationSeconds: 600 })
  app.pod.writeToken(newToken)
  await plane.deleteSecret(ns, 'anchor')
  const old = plane.as(oldToken)
  t.teardown(() => old.close())
  await waitFor('the old token to be rejected', async () =>
    (await old.send('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', whoami)).status === 401 ? true : undefined, 30_000, 250)

  // The open watch was authenticated when it started; a restart forces new requests.
  await plane.restartApiserver()
  await plane.updateSecret(ns, 'db', { password: 'two' })
  await entryWhen(running.store, id, 'updated with the new token', (e) => e.state === 'synced' && valueOf(e, 'password') === 'two', 40_000)
  t.ok(running.log.lines.some((l) => l.msg.includes('answered 401') && l.msg.includes('re-reading the token')), 'the 401 made it re-read the token')
  t.equal(running.store.get(id)?.state, 'synced')

  const logged = running.log.text()
  t.notOk(logged.includes(oldToken), 'the old token is not logged')
  t.notOk(logged.includes(newToken), 'the new token is not logged')
})
