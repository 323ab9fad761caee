import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { silentLogger } from '../src/base/logger.js'
import type { Entry, LedgerOp } from '../src/ledger/entry.js'
import { Ledger } from '../src/ledger/ledger.js'
import { LevelStore } from '../src/ledger/level-store.js'
import { PgStore } from '../src/ledger/pg-store.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { preparePolicy } from '../src/policies/prepare.js'
import { MasterElection } from '../src/services/master-election.js'
import { declareRegisteredMasters } from '../src/services/master-keys.js'
import { waitFor } from './helpers/net.js'
import { createTestDatabase } from './helpers/pg.js'
import { tmpDir } from './helpers/tmp.js'

// Two masters' ledgers over one real PostgreSQL database: the standby follows what the
// active one writes, cannot write itself, and takes over from where the writer stopped; a
// replica verifies the whole chain across the change of writer.
const log = silentLogger()
const note = (author: Ed25519Signer): LedgerOp => ({ op: 'put', policy: preparePolicy({ note: { name: `n-${randomBytes(4).toString('hex')}` } }, author) })

async function master (t: Test, database: Awaited<ReturnType<typeof createTestDatabase>>, signer: Ed25519Signer, name: string): Promise<{ store: PgStore, ledger: Ledger, election: MasterElection }> {
  const store = new PgStore(database)
  const ledger = new Ledger({ store, log, masterSigner: signer })
  await ledger.open()
  const election = new MasterElection({ store, holder: signer.publicKey, address: `127.0.0.1:${name}`, ttlMs: 1200, renewEveryMs: 200, log })
  t.teardown(async () => { await election.stop(); await ledger.close().catch(() => {}) })
  return { store, ledger, election }
}

t.test('a standby master follows the writer, then takes over; a replica verifies across the change', async t => {
  const database = await createTestDatabase(t)
  const a = new Ed25519Signer(randomBytes(32))
  const b = new Ed25519Signer(randomBytes(32))
  const first = await master(t, database, a, 'a')
  await first.election.start()
  await first.ledger.submit({ op: 'put', policy: preparePolicy({ master: { name: 'master-a' } }, a) })

  // b opens the same database and registers its key there; the active master declares it
  const second = await master(t, database, b, 'b')
  await second.store.registerMaster({ key: b.publicKey, name: 'master-b', address: '127.0.0.1:b' })
  t.same((await first.store.registeredMasters()).map(m => m.key), [b.publicKey])
  t.same(await declareRegisteredMasters({ ledger: first.ledger, registry: first.store, signer: a, log }), [b.publicKey], 'a declares b\'s key')
  t.same(await declareRegisteredMasters({ ledger: first.ledger, registry: first.store, signer: a, log }), [], 'once')
  t.ok(first.ledger.masterKeys.includes(b.publicKey))
  await second.election.start()
  t.equal(second.election.isActive, false, 'b stands by')
  t.equal(second.ledger.head.seq, 1, 'b opened the database a began (before a declared b)')
  await first.ledger.submit(note(a))
  const appended: Entry[] = []
  second.ledger.on('appended', entries => { appended.push(...entries) })
  t.equal(await second.ledger.followStore(), 2, 'b follows what a wrote since')
  t.same(appended.map(e => e.seq), [2, 3], 'and announces it (to its sync watchers)')
  t.ok(second.ledger.masterKeys.includes(b.publicKey), 'b sees its own key declared')
  await t.rejects(second.ledger.submit(note(b)), { code: 'not_active' }, 'a standby writes nothing')
  t.equal((await second.store.head()).seq, 3)

  await first.store.close() // a loses the database
  await waitFor('b to take over', () => second.election.isActive ? true : undefined, { timeoutMs: 15_000, everyMs: 100 })
  await second.ledger.followStore()
  const entry = await second.ledger.submit(note(b))
  t.equal(entry.seq, 4, 'b writes on from the head a left')
  t.equal(second.ledger.signedHead?.publicKey, b.publicKey, 'signed with b\'s own key')

  const replica = new Ledger({ store: new LevelStore({ path: join(await tmpDir(t), 'replica') }), log })
  await replica.open()
  t.teardown(async () => { await replica.close() })
  await replica.applyBatch(await second.store.range(1, Infinity), second.ledger.signedHead!)
  t.equal(replica.head.seq, 4, 'a replica takes the whole chain with b\'s head')
  t.equal(replica.masterKey, a.publicKey, 'pinning the master that began the ledger')
})
