import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { silentLogger } from '../src/base/logger.js'
import type { LedgerOp } from '../src/ledger/entry.js'
import { Ledger } from '../src/ledger/ledger.js'
import { verifyBatchAuthorization } from '../src/ledger/ledger-rules.js'
import { LedgerState } from '../src/ledger/state.js'
import { PgStore } from '../src/ledger/pg-store.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { policyBody } from '../src/policies/policy.js'
import { preparePolicy, prepareTombstone } from '../src/policies/prepare.js'
import { FaultyStore } from './helpers/faulty-store.js'
import { createTestDatabase } from './helpers/pg.js'

// Two masters' ledgers over one real PostgreSQL database, in the orders a takeover can put
// their work in: the new writer's view of the ledger is older than the database (the old
// writer's last commit landed after the new one caught up), or its own following of the
// database is still running when it commits.
const log = silentLogger()
const key = (): Ed25519Signer => new Ed25519Signer(randomBytes(32))
const note = (author: Ed25519Signer, name = `n-${randomBytes(4).toString('hex')}`): LedgerOp => ({ op: 'put', policy: preparePolicy({ note: { name } }, author) })

async function ledgerOver (t: Test, store: PgStore | FaultyStore, signer: Ed25519Signer): Promise<Ledger> {
  const ledger = new Ledger({ store, log, masterSigner: signer })
  await ledger.open()
  t.teardown(async () => { await ledger.close().catch(() => {}) })
  return ledger
}

/** Masters a and b over one new database: a began the ledger and declared b's key. */
async function twoMasters (t: Test, wrapB = false): Promise<{ a: Ed25519Signer, b: Ed25519Signer, first: Ledger, second: Ledger, storeB: PgStore | FaultyStore }> {
  const database = await createTestDatabase(t)
  const [a, b] = [key(), key()]
  const first = await ledgerOver(t, new PgStore(database), a)
  await first.submit({ op: 'put', policy: preparePolicy({ master_key: { name: 'master-b', key: b.publicKey } }, a) })
  const storeB = wrapB ? new FaultyStore(new PgStore(database)) : new PgStore(database)
  const second = await ledgerOver(t, storeB, b)
  return { a, b, first, second, storeB }
}

t.test('a writer whose view is older than the database checks its batch again against what landed: a revoked key\'s write is refused, and every replica accepts the chain', async t => {
  const { a, b, first, second } = await twoMasters(t)
  const k = key()
  t.equal(second.head.seq, 1, 'b caught up at seq 1')
  // the old writer's last commit lands after b caught up: it revokes k
  await first.submit({ op: 'put', policy: preparePolicy({ revocation: { key: k.publicKey } }, a) })
  // b, now writing, is asked to order a write by k, checked against its older view
  await t.rejects(second.submit(note(k)), { code: 'unauthorized', message: /was revoked/ }, 'refused: checked again once the commit saw the head had moved')
  t.equal(second.head.seq, 2, 'b now holds the revocation')
  const entry = await second.submit(note(b))
  t.equal(entry.seq, 3, 'and orders after it')

  // a replica verifying the whole chain from the start accepts every entry
  const entries = await second.store.range(1, 100)
  t.equal(entries.length, 3)
  await t.resolves(verifyBatchAuthorization(new LedgerState(), a.publicKey, entries), 'the chain passes every replica\'s authorization check')
})

t.test('two deletes of one policy, one by each writer across a takeover: the second is refused, not chained', async t => {
  const { a, b, first, second } = await twoMasters(t)
  const target = await first.submit(note(a, 'doomed'))
  await second.followStore()
  t.equal(second.head.seq, 2, 'b sees the policy')
  const id = String(policyBody(target.policy).id)
  await first.submit({ op: 'delete', policy: prepareTombstone(id, a) })
  await t.rejects(second.submit({ op: 'delete', policy: prepareTombstone(id, b) }), { code: 'not_found' }, 'b\'s delete is checked again and finds nothing to delete')
  const entries = await second.store.range(1, 100)
  t.same(entries.map(e => e.op), ['put', 'put', 'delete'], 'one delete on the ledger')
  await t.resolves(verifyBatchAuthorization(new LedgerState(), a.publicKey, entries))
})

t.test('a follow of the database still running when this master commits never moves its head back, nor brings back what it deleted', async t => {
  const { a, b, first, second, storeB } = await twoMasters(t, true)
  const faulty = storeB as FaultyStore
  const put = await first.submit(note(a, 'short-lived'))
  const heads: number[] = []
  second.on('appended', () => { heads.push(second.head.seq) })
  // b's follow reads the database (it holds seq 2) and stalls before applying it
  let release = (): void => {}
  faulty.readGate = new Promise<void>(resolve => { release = resolve })
  const following = second.followStore()
  // b, the writer now, deletes that policy while its follow is stalled
  const deleting = second.submit({ op: 'delete', policy: prepareTombstone(String(policyBody(put.policy).id), b) })
  setTimeout(release, 300)
  const [followed, deleted] = await Promise.all([following, deleting])
  t.equal(followed, 1, 'the follow applied seq 2')
  t.equal(deleted.seq, 3, 'the delete is seq 3')
  t.equal(second.head.seq, 3, 'b\'s head is the database\'s')
  t.same(heads, [...heads].sort((x, y) => x - y), `its head only moved forward (${heads.join(' → ')})`)
  t.notOk(second.state.has(String(policyBody(put.policy).id)), 'the deleted policy stays deleted')
  t.equal(await second.followStore(), 0, 'a later follow finds nothing new')
  t.equal(second.head.seq, 3)
})
