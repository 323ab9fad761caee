import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import pg from 'pg'
import { LedgerMeshError } from '../src/base/errors.js'
import { Ledger, type LedgerLimits } from '../src/ledger/ledger.js'
import { LevelStore } from '../src/ledger/level-store.js'
import { Outbox } from '../src/ledger/outbox.js'
import { PgStore } from '../src/ledger/pg-store.js'
import { LedgerState, MAX_ADHOC_INDEXES } from '../src/ledger/state.js'
import type { LedgerStore } from '../src/ledger/store.js'
import { silentLogger } from '../src/base/logger.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { type Policy, policyId } from '../src/policies/policy.js'
import { preparePolicy, prepareTombstone } from '../src/policies/prepare.js'
import { VerifyPool } from '../src/policies/verify-pool.js'
import { MasterList } from '../src/services/master-list.js'
import { Replicator } from '../src/services/replicator.js'
import { errorReply } from '../src/services/rest/errors.js'
import { Scheduler } from '../src/services/scheduler.js'
import { FaultyStore } from './helpers/faulty-store.js'
import { author, ledgerPeer, probe, startInsert, startSync, until } from './helpers/libp2p.js'
import { createTestDatabase } from './helpers/pg.js'
import { tmpDir } from './helpers/tmp.js'

// The write path's promises: an acknowledged or kept insert is never lost, one bad insert
// fails only itself, the master never orders on a state its store has moved past, readers
// never see a half-built state, and nothing that outside input drives grows without bound.

const log = silentLogger()

/** Settles within `ms` or reports that it waited too long (the defect these tests look for). */
async function within<T> (ms: number, what: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`${what}: still waiting after ${ms} ms`)) }, ms) })
  try {
    return await Promise.race([work, late])
  } finally {
    clearTimeout(timer)
  }
}

type StoreKind = 'level' | 'psql'

/** The ledger's tree is of its head's size and has the root its signed head names. */
function treeMatchesHead (ledger: Ledger): boolean {
  return ledger.tree.size === ledger.head.seq && ledger.signedHead?.seq === ledger.head.seq && ledger.tree.root().toString('hex') === ledger.signedHead.root
}

async function newStore (t: Test, kind: StoreKind): Promise<LedgerStore> {
  if (kind === 'level') return new LevelStore({ path: join(await tmpDir(t), 'ledger') })
  return new PgStore({ ...(await createTestDatabase(t)), lockTimeoutMs: 500 })
}

async function masterLedger (t: Test, store: LedgerStore, limits?: LedgerLimits): Promise<{ ledger: Ledger, signer: Ed25519Signer }> {
  const signer = new Ed25519Signer(randomBytes(32))
  const ledger = new Ledger({ store, log, masterSigner: signer, limits })
  await ledger.open()
  t.teardown(async () => { await ledger.close() })
  return { ledger, signer }
}

for (const kind of ['level', 'psql'] as const) {
  t.test(`${kind}: a deleted policy put again inside a burst of 20 fails alone; the other 19 are on the ledger`, async t => {
    const { ledger } = await masterLedger(t, await newStore(t, kind))
    const reborn = probe(`reborn-${kind}`)
    await ledger.submit({ op: 'put', policy: reborn })
    await ledger.submit({ op: 'delete', policy: prepareTombstone(policyId(reborn), author) })
    t.notOk(ledger.state.has(policyId(reborn)), 'deleted')

    const others = Array.from({ length: 19 }, (_, i) => probe(`burst-${kind}-${i}`))
    const burst = [...others.slice(0, 10), reborn, ...others.slice(10)]
    const results = await Promise.allSettled(burst.map(async policy => await ledger.submit({ op: 'put', policy })))
    const refused = results.flatMap((r, i) => r.status === 'rejected' ? [i] : [])
    t.same(refused, [10], 'only the re-inserted deleted policy is refused')
    t.match((results[10] as PromiseRejectedResult).reason, { code: 'conflict', message: /was deleted .* id is retired/ })
    for (const policy of others) t.ok(ledger.state.has(policyId(policy)), 'each of the other 19 is in the state')
    const stored = await ledger.store.range(1, 100)
    t.equal(stored.length, 2 + 19, 'and in the store: put, delete, then the 19')
    t.same(ledger.head, await ledger.store.head(), 'the ledger head is the store head')
    t.ok(treeMatchesHead(ledger), 'and its tree holds the stored entries alone, with the signed root')
  })
}

t.test('psql: a commit blocked on the ledger lock fails with `timeout` instead of waiting forever', async t => {
  const database = await createTestDatabase(t)
  const store = new PgStore({ ...database, lockTimeoutMs: 300 })
  const { ledger } = await masterLedger(t, store)
  await ledger.submit({ op: 'put', policy: probe('before-lock') })

  const holder = new pg.Client({ ...database })
  await holder.connect()
  t.teardown(async () => { await holder.end().catch(() => {}) })
  await holder.query('BEGIN')
  await holder.query('SELECT seq FROM ledger_head WHERE id = 1 FOR UPDATE')
  const blocked = probe('while-locked')
  const refusal = await within(15_000, 'a commit under a held lock', ledger.submit({ op: 'put', policy: blocked }).then(() => undefined, (err: unknown) => err))
  t.match(refusal, { code: 'timeout', message: /waited more than 300 ms for the ledger lock/ })
  await holder.query('ROLLBACK')

  const entry = await ledger.submit({ op: 'put', policy: blocked })
  t.equal(entry.seq, 2, 'once the lock is free the same insert is ordered, once')
})

t.test('a commit whose outcome was unknown: the master reads the store again before ordering anything else', async t => {
  const faulty = new FaultyStore(new LevelStore({ path: join(await tmpDir(t), 'ledger') }))
  const { ledger } = await masterLedger(t, faulty)
  await ledger.submit({ op: 'put', policy: probe('first') })

  faulty.failAfter = 1
  const ambiguous = probe('ambiguous')
  await t.rejects(ledger.submit({ op: 'put', policy: ambiguous }), { code: 'store_unavailable' }, 'the client hears an error')
  t.equal((await faulty.head()).seq, 2, 'although the store holds the entry')
  t.equal(ledger.tree.size, 1, 'the tree holds what the master knows committed (the root it signed for the batch is not in it)')

  const next = await ledger.submit({ op: 'put', policy: probe('next') })
  t.equal(next.seq, 3, 'the next insert is ordered after it')
  t.ok(ledger.state.has(policyId(ambiguous)), 'the state holds what the store committed')
  t.same(ledger.head, await faulty.head(), 'and the same head')
  t.ok(treeMatchesHead(ledger), 'and a tree of the same entries')
  await t.rejects(ledger.submit({ op: 'put', policy: ambiguous }), { code: 'duplicate_id' }, 'a retry of it is a duplicate, not a second copy')

  faulty.failBefore = 1
  await t.rejects(ledger.submit({ op: 'put', policy: probe('outage') }), { code: 'store_unavailable' })
  t.equal(ledger.tree.size, 3, 'a commit that wrote nothing leaves the tree as it was')
  t.equal((await ledger.submit({ op: 'put', policy: probe('after-outage') })).seq, 4, 'an outage that wrote nothing leaves the chain as it was')
  t.ok(treeMatchesHead(ledger), 'the tree holds the stored entries, with the signed root')
})

t.test('a rewind swaps in the re-folded state: no reader sees a partial ledger', async t => {
  const { ledger } = await masterLedger(t, new LevelStore({ path: join(await tmpDir(t), 'ledger') }))
  await Promise.all(Array.from({ length: 300 }, async (_, i) => await ledger.submit({ op: 'put', policy: probe(`r-${i}`) })))
  const local = probe('waiting-in-the-outbox')
  ledger.state.addLocal(local)
  const keep = ledger.head.seq - 100

  const seen = new Set<number>()
  let watching = true
  const watch = (): void => {
    seen.add(ledger.state.size)
    if (watching) setImmediate(watch)
  }
  watch()
  await ledger.rewind(keep)
  watching = false
  t.ok([...seen].every(size => size === 301 || size === keep + 1), `readers saw only the whole old or the whole new state (sizes seen: ${[...seen].join(', ')})`)
  t.equal(ledger.state.size, keep + 1, 'the entries up to the rewind point, and the outbox policy')
  t.ok(ledger.state.isLocal(policyId(local)), 'the outbox policy is still shown as local')
})

t.test('indexes for fields that queries make up are capped; answers stay right', async t => {
  const state = new LedgerState()
  const signer = new Ed25519Signer(randomBytes(32))
  for (let i = 0; i < 50; i++) {
    const policy = preparePolicy({ probe: { name: `p${i}`, color: i % 2 === 0 ? 'red' : 'blue' } }, signer)
    state.apply({ seq: i + 1, op: 'put', policy, prevHash: '', hash: '' })
  }
  const before = state.indexCount
  for (let i = 0; i < 20_000; i++) {
    state.lookup('probe', `made_up_${i}`, 'x')[Symbol.iterator]().next()
    state.lookup(`no_such_type_${i}`, 'name', 'x')[Symbol.iterator]().next()
  }
  t.ok(state.indexCount <= before + MAX_ADHOC_INDEXES, `at most ${MAX_ADHOC_INDEXES} on-demand indexes kept (${state.indexCount - before} now)`)
  t.equal([...state.lookup('probe', 'color', 'red')].length, 25, 'an evicted index is rebuilt when asked for again')
  t.equal([...state.lookup('probe', 'name', 'p7')].length, 1, 'the eager indexes stay')
})

t.test('a full insert queue answers `overloaded` (retry after) instead of queueing without end', async t => {
  const faulty = new FaultyStore(new LevelStore({ path: join(await tmpDir(t), 'ledger') }))
  const { ledger } = await masterLedger(t, faulty, { maxPendingInserts: 5 })
  const gate = Promise.withResolvers<void>()
  faulty.gate = gate.promise
  const first = ledger.submit({ op: 'put', policy: probe('holds-the-commit') })
  await until(() => faulty.commits === 1)
  const burst = Array.from({ length: 20 }, async (_, i) => await ledger.submit({ op: 'put', policy: probe(`queued-${i}`) }))
  const overloaded = await Promise.race([
    Promise.any(burst.map(async p => await p.then(() => { throw new Error('accepted') }, (err: unknown) => err))),
    new Promise(resolve => setTimeout(resolve, 10_000, undefined))
  ])
  t.match(overloaded, { code: 'overloaded', message: /inserts waiting/, details: { retryAfterSeconds: 1 } }, 'the inserts past the limit are refused at once')
  faulty.gate = undefined
  gate.resolve()
  await first
  const results = await Promise.allSettled(burst)
  const accepted = results.filter(r => r.status === 'fulfilled').length
  t.ok(accepted >= 1 && accepted <= 5, `at most the limit were queued and then committed (${accepted})`)
  t.ok(results.every(r => r.status === 'fulfilled' || (r.reason as LedgerMeshError).code === 'overloaded'), 'the rest were refused as overloaded')
  const reply = errorReply(overloaded)
  t.equal(reply.status, 503, 'REST answers 503')
  t.equal(reply.headers['Retry-After'], '1', 'with Retry-After')
})

t.test('callers waiting for the head are capped', async t => {
  const { ledger } = await masterLedger(t, new LevelStore({ path: join(await tmpDir(t), 'ledger') }), { maxSeqWaiters: 3 })
  const waits = Array.from({ length: 3 }, async () => await ledger.waitForSeq(1, 30_000))
  await t.rejects(ledger.waitForSeq(1, 30_000), { code: 'overloaded' }, 'the fourth waiter is refused')
  await ledger.submit({ op: 'put', policy: probe('wakes-them') })
  t.same(await Promise.all(waits), [true, true, true], 'the three see the head pass')
  t.equal(await ledger.waitForSeq(1, 10), true, 'a slot is free again')
})

t.test('a verify thread that ends mid-batch: the batch is still answered, rightly', async t => {
  const signer = new Ed25519Signer(randomBytes(32))
  const policies: Policy[] = Array.from({ length: 4000 }, (_, i) => preparePolicy({ item: { name: `v${i}` } }, signer))
  policies[3500] = { item: { ...(policies[3500] as { item: Record<string, string> }).item, name: 'changed' } }
  const pool = new VerifyPool(1)
  t.teardown(async () => { await pool.close() })
  const answer = pool.firstInvalid(policies)
  const workers = (pool as unknown as { workers: Array<{ terminate: () => Promise<number> }> }).workers
  t.equal(workers.length, 1, 'the batch went to a thread')
  await workers[0].terminate()
  t.equal(await within(15_000, 'the answer of a batch whose thread ended', answer), 3500, 'the tampered policy is found')
  t.equal(await within(15_000, 'the next batch', pool.firstInvalid(policies.slice(0, 3000))), -1, 'the pool goes on')
})

t.test('the outbox keeps inserts through transient refusals and drops only definitive ones, visibly', async t => {
  let faulty: FaultyStore | undefined
  const master = await ledgerPeer(t, { master: true, store: path => (faulty = new FaultyStore(new LevelStore({ path }))) })
  await startInsert(t, master)
  await startSync(t, master)
  const replica = await ledgerPeer(t)
  const sync = await startSync(t, replica)
  const insert = await startInsert(t, replica)
  const outbox = new Outbox(join(await tmpDir(t), 'outbox'))
  await outbox.open()
  t.teardown(async () => { await outbox.close() })
  const scheduler = new Scheduler(log)
  await scheduler.start()
  t.teardown(async () => { await scheduler.stop() })
  const drops: string[] = []
  const port = /\/tcp\/(\d+)/.exec(master.address.toString())?.[1]
  const replicator = new Replicator({
    ledger: replica.ledger,
    sync,
    insert,
    outbox,
    scheduler,
    log,
    source: 'master',
    masters: new MasterList([`127.0.0.1:${port}`]),
    interval: { ms: 200, text: '200 ms' },
    onOutboxDrop: drop => { drops.push(drop.code) }
  })
  await replicator.start()
  t.teardown(async () => { await replicator.stop() })

  faulty!.failBefore = Number.POSITIVE_INFINITY
  const kept = probe('through-an-outage')
  await replicator.keepLocal({ op: 'put', policy: kept })
  t.ok(await until(() => faulty!.failed >= 2, 15_000), 'the master refused it twice with store_unavailable')
  t.equal((await outbox.list()).length, 1, 'it is still in the outbox')
  t.ok(replica.ledger.state.isLocal(policyId(kept)), 'and still shown as local')

  faulty!.failBefore = 0
  t.ok(await until(() => master.ledger.state.has(policyId(kept)), 15_000), 'once the store is back it reaches the ledger')
  t.ok(await until(() => replicator.outboxSize === 0, 15_000), 'and leaves the outbox')
  t.equal([...master.ledger.state.policiesOfType('probe')].filter(p => policyId(p) === policyId(kept)).length, 1, 'exactly once')

  const forged: Policy = { probe: { ...(probe('forged') as { probe: Record<string, string> }).probe, name: 'changed after signing' } }
  await replicator.keepLocal({ op: 'put', policy: forged })
  t.ok(await until(() => drops.length === 1, 15_000), 'a policy the master refuses for good is dropped')
  t.same(drops, ['bad_signature'], 'and the drop is reported with its reason')
  t.equal(replicator.outboxDropped, 1)
  t.match(replicator.status().details, /outbox inserts dropped 1, .*bad_signature/, '`get processes` says so')
  t.notOk(replica.ledger.state.has(policyId(forged)), 'it is no longer shown locally')
})
