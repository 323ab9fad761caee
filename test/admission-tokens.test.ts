import t from 'tap'
import { waitFor } from './helpers/net.js'
import { httpJson } from './helpers/http.js'
import { metric, notSyncing } from './helpers/admission.js'
import { type NodeProcess, startNode } from './helpers/node-process.js'

// Join tokens, with real nodes: a token admits up to its uses, a wrong secret admits nothing,
// and a node admitted once may restart with its used token (expiry: admission-rules).

t.test('a join token admits up to its uses, not with a wrong secret; a restart with a used token still works', async t => {
  const master = await startNode(t, { type: 'master', name: 'gate' })
  const token = (await master.ok('create join token where ttl = 1 hour and uses = 2', { method: 'POST' })).text.trim()
  t.match(token, /^lmjt\.[0-9a-f]{16}\.[0-9a-f]{64}\.[0-9a-f]{16}$/, 'a token as the README shows it')
  const masterKey = String((await httpJson(`${master.url}/v1/status`, 5000) as { public_key: string }).public_key)
  t.equal(token.split('.')[3], masterKey.slice(0, 16), 'pinned to the master\'s key')
  const member = async (name: string, joinToken: string, extra: object = {}) =>
    await startNode(t, { type: 'member', name, join: false, env: { LEDGER_CONN: master.ledgerConn, JOIN_TOKEN: joinToken, BLOCKCHAIN_SYNC: '1 second' }, ...extra })
  /** A node whose join is refused cannot declare itself: its start-up fails, saying why. */
  const refused = async (name: string, joinToken: string, why: RegExp) => {
    const node = await member(name, joinToken, { noWait: true })
    t.equal(await node.waitForExit(30_000), 1, `${name} cannot start`)
    t.match(node.logs(), why, `${name}'s log says why`)
    t.match(node.logs(), /start-up failed: key [0-9a-f]{64} is not admitted/)
  }
  const synced = async (node: NodeProcess) => await waitFor(`${node.name} to sync`, async () => await notSyncing(node) ? undefined : true, { timeoutMs: 30_000 })

  const n1 = await member('n1', token)
  const n2 = await member('n2', token)
  await synced(n1)
  await synced(n2)
  t.equal((await master.ok('blockchain get admission bring.count')).text, '2', 'two admissions on the ledger')

  await refused('n3', token, /join token [0-9a-f]{16} has admitted 2 nodes, its limit/)
  t.match(master.logs(), /has admitted 2 nodes, its limit/, 'the master logs the refused third use')

  await n1.stop()
  const again = await member('n1', token, { home: n1.home, tcpPort: n1.tcpPort, restPort: n1.restPort })
  await synced(again)
  t.pass('an admitted node restarted with its (now used up) token still syncs')

  // an expired token, a wrong secret, an unknown id: test/admission-rules.test.ts, in-process
  await refused('forged', `${token.slice(0, 22)}${'0'.repeat(64)}`, /the secret does not match/)
  t.ok(await metric(master, 'ledgermesh_unadmitted_total', 'what="join"') >= 2, '/metrics counts the refused joins')
  t.notMatch(master.logs(), new RegExp(token.split('.')[2]), 'the token\'s secret is in no log line')

  // a token pinned to another key is not shown to this master: nothing reaches its gatekeeper
  const refusedBefore = await metric(master, 'ledgermesh_unadmitted_total', 'what="join"')
  const misled = await member('misled', `${token.split('.').slice(0, 3).join('.')}.${'0'.repeat(16)}`, { noWait: true })
  await waitFor('misled to say why it cannot join', () => misled.logs().includes('is not one of the masters the join token names') ? true : undefined, { timeoutMs: 30_000 })
  t.pass('the joining node refused the master before showing it the token')
  t.equal(await metric(master, 'ledgermesh_unadmitted_total', 'what="join"'), refusedBefore, 'the master saw no join attempt')
  t.equal((await master.ok('blockchain get admission bring.count')).text, '2', 'and admitted nobody')
  // an older token, without a pin, is shown to whoever answers (and works as before)
  const fresh = (await master.ok('create join token where ttl = 1 hour and uses = 1', { method: 'POST' })).text.trim()
  const unpinned = await member('unpinned', fresh.split('.').slice(0, 3).join('.'))
  t.ok(unpinned, 'a token without pins still joins')
})
