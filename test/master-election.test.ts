import { randomBytes } from 'node:crypto'
import t from 'tap'
import { LedgerMeshError } from '../src/base/errors.js'
import { silentLogger } from '../src/base/logger.js'
import { type Head } from '../src/ledger/head.js'
import { checkpointSigner } from './helpers/checkpoints.js'
import type { LedgerOp } from '../src/ledger/entry.js'
import { PgStore } from '../src/ledger/pg-store.js'
import { sha256Hex } from '../src/policies/canonical.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { MasterElection } from '../src/services/master-election.js'
import { waitFor } from './helpers/net.js'
import { createTestDatabase } from './helpers/pg.js'
import { TcpProxy } from './helpers/tcp-proxy.js'

// Two masters' elections over one real PostgreSQL database: one active, the other standing
// by; the active one cut off from the database steps down and the other takes over with a
// new epoch; commits follow the election (the standby's are refused).
const signer = new Ed25519Signer(randomBytes(32))
const sign = checkpointSigner(signer)
const put = (): LedgerOp[] => [{ op: 'put', policy: { worker: { name: 'w', company: 'acme', id: sha256Hex(randomBytes(16)) } } }]
const log = silentLogger()
const TTL_MS = 1200

async function master (t: Parameters<Parameters<typeof t.test>[1]>[0], database: Awaited<ReturnType<typeof createTestDatabase>>, name: string): Promise<{ store: PgStore, election: MasterElection }> {
  const store = new PgStore(database)
  await store.open()
  const election = new MasterElection({ store, holder: `key-${name}`, address: `127.0.0.1:${name}`, ttlMs: TTL_MS, renewEveryMs: 200, log })
  t.teardown(async () => { await election.stop(); await store.close().catch(() => {}) })
  return { store, election }
}

async function refused (promise: Promise<unknown>): Promise<string> {
  try { await promise } catch (err) { if (err instanceof LedgerMeshError) return err.code; throw err }
  return 'written'
}

/** Masters a and b over one fresh database, their elections started in that order (a wins). */
async function electedPair (t: Parameters<Parameters<typeof t.test>[1]>[0]): Promise<[Awaited<ReturnType<typeof master>>, Awaited<ReturnType<typeof master>>]> {
  const database = await createTestDatabase(t)
  const a = await master(t, database, 'a')
  const b = await master(t, database, 'b')
  await a.election.start()
  await b.election.start()
  return [a, b]
}

t.test('one active master; when it is cut off from the database the other takes over and the first writes nothing', async t => {
  const [a, b] = await electedPair(t)
  t.match(a.election.state, { role: 'active', holder: 'key-a', epoch: 1 })
  t.match(b.election.state, { role: 'standby', holder: 'key-a', holderAddress: '127.0.0.1:a' })
  t.match(b.election.status().details, /Standby \(active: 127\.0\.0\.1:a\), epoch 1/)
  t.equal((await a.store.commit(put(), sign))[0].seq, 1, 'the active master writes')
  t.equal(await refused(b.store.commit(put(), sign)), 'not_active', 'the standby does not')

  await a.store.close() // a loses its database: it can neither renew nor write
  await waitFor('b to take over', () => b.election.isActive ? true : undefined, { timeoutMs: 15_000, everyMs: 100 })
  t.match(b.election.state, { role: 'active', holder: 'key-b', epoch: 2 })
  await waitFor('a to step down by its own clock', () => a.election.isActive ? undefined : true, { timeoutMs: 15_000, everyMs: 100 })
  t.match(a.election.status().details, /Standby/)
  t.equal((await b.store.commit(put(), sign))[0].seq, 2, 'the new active master goes on from the same head')
})

t.test('a clean stop hands the lease over at once', async t => {
  const [a, b] = await electedPair(t)
  const changes: string[] = []
  b.election.on('change', state => { changes.push(`${state.role}@${state.epoch}`) })
  await a.election.stop()
  t.equal(await refused(a.store.commit(put(), sign)), 'not_active', 'a stopped master writes nothing')
  await waitFor('b to take over', () => b.election.isActive ? true : undefined, { timeoutMs: 5000, everyMs: 50 })
  t.same(changes, ['active@2'])
})

t.test('an active master whose database calls hang stops claiming its lease by its own clock, though no call has failed', async t => {
  const database = await createTestDatabase(t)
  const proxy = new TcpProxy({ host: database.host, port: database.port })
  await proxy.start()
  t.teardown(async () => { await proxy.stop() })
  const a = await master(t, { ...database, host: '127.0.0.1', port: proxy.port }, 'a')
  await a.election.start()
  t.ok(a.election.isActive && a.election.holdsLease, 'a is active and holds its lease')

  proxy.stall() // every call to the database from here on hangs: no answer, no error
  await waitFor('a to stop claiming the lease while its renewal hangs', () => a.election.holdsLease ? undefined : true, { timeoutMs: 15_000, everyMs: 20 })
  t.pass('holdsLease is false: its allocator grants no worker lease (grantRefused)')
  await waitFor('the status to say why', () => /not confirmed within its 1200 ms TTL/.test(a.election.status().details ?? '') ? true : undefined, { timeoutMs: 5000, everyMs: 20 })
  t.match(a.election.status().details, /not confirmed within its 1200 ms TTL: no worker lease is granted/, 'said while the renewal still hangs (no database error yet)')
  proxy.unstall()
  await waitFor('a to hold the lease again once the database answers', () => a.election.holdsLease ? true : undefined, { timeoutMs: 15_000, everyMs: 50 })
  t.pass('and it claims it again')
})
