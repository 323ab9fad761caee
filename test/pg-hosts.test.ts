import { randomBytes } from 'node:crypto'
import t from 'tap'
import { LedgerMeshError } from '../src/base/errors.js'
import { parsePgHosts, pgHostText } from '../src/ledger/pg-hosts.js'
import { isPrimaryLoss } from '../src/ledger/pg-primary.js'
import { PgStore } from '../src/ledger/pg-store.js'
import { replicationState } from '../src/ledger/pg-replication.js'
import { parseConfig } from '../src/node/config.js'
import { ledgerStoreSpec } from '../src/node/open-ledger.js'
import { createTestDatabase } from './helpers/pg.js'
import { checkpointSigner } from './helpers/checkpoints.js'
import type { LedgerOp } from '../src/ledger/entry.js'
import { sha256Hex } from '../src/policies/canonical.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { freePort } from './helpers/net.js'

// DB_IP and DB_PORT in libpq's multi-host form, the store's search for the primary among them,
// what it makes of the primary's replication settings, and LEDGER_REQUIRE_SYNC's per-commit check. The cluster itself (a real standby,
// a promotion) is in pg-ha.test.ts.

t.test('hosts: one server, a list with a port each, one port for all, or one port per host', async t => {
  t.same(parsePgHosts('127.0.0.1', '5432'), [{ host: '127.0.0.1', port: 5432 }])
  t.same(parsePgHosts('10.0.0.1:5433, 10.0.0.2:5434', '5432'), [{ host: '10.0.0.1', port: 5433 }, { host: '10.0.0.2', port: 5434 }], 'a host\'s own port wins')
  t.same(parsePgHosts('db1,db2,db3', 6432), [{ host: 'db1', port: 6432 }, { host: 'db2', port: 6432 }, { host: 'db3', port: 6432 }], 'one port for every host')
  t.same(parsePgHosts('db1,db2', '5432,5433'), [{ host: 'db1', port: 5432 }, { host: 'db2', port: 5433 }], 'one port per host, in order')
  t.same(parsePgHosts('[::1]:5433,db2', '5432'), [{ host: '::1', port: 5433 }, { host: 'db2', port: 5432 }], 'an IPv6 address in brackets')
  t.equal(pgHostText({ host: '::1', port: 5433 }), '[::1]:5433')
  t.same(parsePgHosts('::1,fe80::2', '5433'), [{ host: '::1', port: 5433 }, { host: 'fe80::2', port: 5433 }], 'bare IPv6 addresses take the ports\' port')
  t.same(parsePgHosts('/var/run/postgresql', '5433'), [{ host: '/var/run/postgresql', port: 5433 }], 'a Unix-domain socket\'s directory, as libpq takes it')
})

t.test('hosts: each bad element is named, with its place', async t => {
  const refused = (hosts: string, ports: string, pattern: RegExp, field: string): void => {
    t.throws(() => parsePgHosts(hosts, ports), { code: 'bad_config', message: pattern, details: { field } }, `${hosts} / ${ports}`)
  }
  refused('db1,,db3', '5432', /element 2 of 3\) is empty/, 'host')
  refused('db1,db two', '5432', /element 2 of 2\) is "db two"/, 'host')
  refused('db1:70000', '5432', /"db1:70000".*not a port/, 'port')
  refused('db1,db2,db3', '5432,5433', /2 ports for 3 hosts/, 'port')
  refused('db1,db2', '5432,x', /element 2 of 2\) is "x"/, 'port')
  refused('db1:5432,db1', '5432', /db1:5432 is listed twice/, 'host')
})

t.test('config: DB_IP and DB_PORT lists, LEDGER_REQUIRE_SYNC, and the key a bad value is reported under', async t => {
  const base = { NODE_TYPE: 'master', NODE_NAME: 'm', DB_TYPE: 'psql' }
  const config = parseConfig({ ...base, DB_IP: '10.0.0.1,10.0.0.2', DB_PORT: '5432,5433', LEDGER_REQUIRE_SYNC: 'true' }, 'test.env')
  t.same(config.db.hosts, [{ host: '10.0.0.1', port: 5432 }, { host: '10.0.0.2', port: 5433 }])
  t.equal(config.db.requireSync, true)
  t.equal(parseConfig(base, 'test.env').db.requireSync, false, 'warn, not refuse, by default')
  t.throws(() => parseConfig({ ...base, DB_IP: '10.0.0.1,,10.0.0.3' }, 'test.env'), /DB_IP.*element 2 of 3\) is empty/)
  t.throws(() => parseConfig({ ...base, DB_IP: 'a,b,c', DB_PORT: '1,2' }, 'test.env'), /DB_PORT.*2 ports for 3 hosts/)
  t.throws(() => parseConfig({ ...base, LEDGER_REQUIRE_SYNC: 'maybe' }, 'test.env'), /LEDGER_REQUIRE_SYNC/)
})

t.test('a lost primary: connection failures, shutdowns and read-only refusals; not a duplicate or a lock wait', async t => {
  const pgError = (code: string): Error => Object.assign(new Error(`error ${code}`), { code })
  t.ok(isPrimaryLoss(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })), 'refused')
  t.ok(isPrimaryLoss(new Error('Connection terminated unexpectedly')), 'terminated')
  t.ok(isPrimaryLoss(pgError('25006')), 'read-only transaction (a standby)')
  t.ok(isPrimaryLoss(pgError('57P01')), 'admin shutdown')
  t.ok(isPrimaryLoss(pgError('08006')), 'connection failure')
  t.notOk(isPrimaryLoss(pgError('23505')), 'a duplicate is the caller\'s')
  t.notOk(isPrimaryLoss(pgError('55P03')), 'a lock wait is not an outage')
  t.notOk(isPrimaryLoss(new LedgerMeshError('not_active', 'fenced')), 'the store\'s own refusals')
})

t.test('the store passes over a host that does not answer and writes to the next', async t => {
  const db = await createTestDatabase(t)
  const dead = await freePort()
  const store = new PgStore({ ...db, hosts: [{ host: '127.0.0.1', port: dead }, { host: db.host, port: db.port }] })
  await store.open()
  t.teardown(async () => { await store.close() })
  t.equal(store.cluster().primary, `${db.host}:${db.port}`)
  t.match(store.location, new RegExp(`@127\\.0\\.0\\.1:${dead},${db.host}:${db.port}/`), 'the location names both hosts')
  t.same((await store.head()).seq, 0)
  const replication = await store.replication()
  t.equal(replication.standbys.length, 0, 'the test server has no standby')
  t.match(replication.problem, /no synchronous standby/)
})

t.test('no host answers: one error naming each host and why', async t => {
  const [a, b] = [await freePort(), await freePort()]
  const store = new PgStore({ host: '127.0.0.1', port: a, hosts: [{ host: '127.0.0.1', port: a }, { host: '127.0.0.1', port: b }], user: 'postgres', database: 'lm_none' })
  const err = await store.open().then(() => undefined, (err: unknown) => err)
  t.ok(err instanceof LedgerMeshError && err.code === 'store_unavailable', 'store_unavailable')
  t.match((err as Error).message, /no PostgreSQL primary \(read-write\) found after \d+ pass/)
  t.match((err as Error).message, `127.0.0.1:${a}: `, 'names the first host')
  t.match((err as Error).message, `127.0.0.1:${b}: `, 'names the second host')
})

t.test('replication: what a commit waits for, as the primary reports it', async t => {
  const streaming = { name: 's2', state: 'streaming', sync_state: 'quorum', replay_lag_ms: 1 }
  t.equal(replicationState({ synchronous_commit: 'on', synchronous_standby_names: 'ANY 1 (s2)', standbys: [streaming] }).problem, undefined, 'a quorum standby streaming')
  t.match(replicationState({ synchronous_commit: 'local', synchronous_standby_names: 'ANY 1 (s2)', standbys: [streaming] }).problem, /synchronous_commit is local/)
  t.match(replicationState({ synchronous_commit: 'on', synchronous_standby_names: '', standbys: [{ ...streaming, sync_state: 'async' }] }).problem, /synchronous_standby_names is empty/)
  t.match(replicationState({ synchronous_commit: 'on', synchronous_standby_names: 's2', standbys: [{ ...streaming, state: 'catchup', sync_state: 'potential' }] }).problem, /no synchronous standby is streaming/)
  t.match(replicationState({ synchronous_commit: 'on', synchronous_standby_names: 's2', standbys: [{ ...streaming, state: null, sync_state: null }] }).problem, /pg_monitor/)
})

t.test('connect dbms: ip= and port= in the same forms; a bad one is the command\'s error', async t => {
  const db = parseConfig({ NODE_TYPE: 'master', NODE_NAME: 'm', DB_TYPE: 'psql', DB_IP: '10.0.0.1', LEDGER_REQUIRE_SYNC: 'true' }, 'test.env').db
  t.same(ledgerStoreSpec(db, { database: 'blockchain' }).hosts, [{ host: '10.0.0.1', port: 5432 }], 'the config\'s when the command names none')
  // AnyLog's parser gives `ip = a:1,b:2` as "a:1 , b:2"
  const spec = ledgerStoreSpec(db, { database: 'blockchain', type: 'psql', ip: '10.0.0.1:5433 , 10.0.0.2:5434' })
  t.same(spec.hosts, [{ host: '10.0.0.1', port: 5433 }, { host: '10.0.0.2', port: 5434 }])
  t.equal(spec.requireSync, true, 'LEDGER_REQUIRE_SYNC holds for a store the command names')
  t.throws(() => ledgerStoreSpec(db, { database: 'blockchain', ip: 'a,b', port: '1,2,3' }), { code: 'bad_command', message: /^connect dbms: 3 ports for 2 hosts/ })
})

t.test('LEDGER_REQUIRE_SYNC: a fenced commit is refused while no synchronous standby streams; without it, it is written', async t => {
  const db = await createTestDatabase(t)
  const signer = new Ed25519Signer(randomBytes(32))
  const put = (): LedgerOp[] => [{ op: 'put', policy: { worker: { name: 'w', company: 'acme', id: sha256Hex(randomBytes(16)) } } }]
  const required = new PgStore({ ...db, requireSync: true })
  const plain = new PgStore(db)
  await required.open()
  await plain.open()
  t.teardown(async () => { await Promise.all([required.close(), plain.close()]) })
  const lease = await required.acquireLease(signer.publicKey, '127.0.0.1:1', 60_000)
  for (const store of [required, plain]) store.setFence({ holder: signer.publicKey, epoch: lease.epoch })
  const refused = await required.commit(put(), checkpointSigner(signer)).then(() => undefined, (err: unknown) => err)
  t.ok(refused instanceof LedgerMeshError && refused.code === 'store_unavailable', 'refused as store_unavailable (clients retry)')
  t.match((refused as Error).message, /LEDGER_REQUIRE_SYNC=true: .* has no synchronous standby streaming now, .* nothing was written/)
  t.equal((await required.head()).seq, 0, 'nothing was written')
  const [entry] = await plain.commit(put(), checkpointSigner(signer))
  t.equal(entry.seq, 1, 'the same fenced commit without LEDGER_REQUIRE_SYNC is written')
})
