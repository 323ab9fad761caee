import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { LedgerMeshError } from '../src/base/errors.js'
import { checkpointSigner } from './helpers/checkpoints.js'
import { PgStore } from '../src/ledger/pg-store.js'
import { sha256Hex } from '../src/policies/canonical.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import type { LedgerOp } from '../src/ledger/entry.js'
import { createTestDatabase } from './helpers/pg.js'
import { type PgBouncer, startPgBouncer } from './helpers/pgbouncer.js'
import { waitFor } from './helpers/net.js'

// The writer lease several masters share in one PostgreSQL database: one holder at a time,
// a new epoch at every takeover (by the database's clock), and commits fenced by it; and the
// masters' keys registered there. Each test runs with the masters connected directly and
// through PgBouncer in transaction pooling mode.
const signer = new Ed25519Signer(randomBytes(32))
const sign = checkpointSigner(signer)
const put = (): LedgerOp[] => [{ op: 'put', policy: { worker: { name: 'w', company: 'acme', id: sha256Hex(randomBytes(16)) } } }]
const TTL_MS = 1500

async function twoMasters (t: Test, bouncer?: PgBouncer): Promise<[PgStore, PgStore]> {
  const direct = await createTestDatabase(t)
  const database = bouncer === undefined ? direct : bouncer.through(direct)
  const a = new PgStore(database)
  const b = new PgStore(database)
  await Promise.all([a.open(), b.open()])
  t.teardown(async () => { await Promise.all([a.close(), b.close()]) })
  return [a, b]
}

async function rejection (promise: Promise<unknown>): Promise<LedgerMeshError> {
  try {
    await promise
  } catch (err) {
    if (err instanceof LedgerMeshError) return err
    throw err
  }
  throw new Error('expected a rejection')
}

/** The tests, for masters that reach the database as `via` says. */
function leaseSuite (t: Test, via: string, bouncer?: PgBouncer): void {
  t.test(`${via}: one holder at a time; a renewal keeps the epoch; an expired lease is taken with a new one`, async t => {
    const [a, b] = await twoMasters(t, bouncer)
    const first = await a.acquireLease('key-a', 'a:1', TTL_MS)
    t.match(first, { holder: 'key-a', address: 'a:1', epoch: 1, live: true })
    const refused = await b.acquireLease('key-b', 'b:1', TTL_MS)
    t.match(refused, { holder: 'key-a', epoch: 1, live: true }, 'b sees a holding it and gets nothing')
    const renewed = await a.acquireLease('key-a', 'a:1', TTL_MS)
    t.equal(renewed.epoch, 1, 'a renewal keeps the epoch')
    t.ok(renewed.expires!.getTime() >= first.expires!.getTime(), 'and moves the expiry on')

    const taken = await waitFor('a\'s lease to run out and b to take it', async () => {
      const lease = await b.acquireLease('key-b', 'b:1', TTL_MS)
      return lease.holder === 'key-b' ? lease : undefined
    }, { timeoutMs: 15_000, everyMs: 200 })
    t.match(taken, { holder: 'key-b', epoch: 2, live: true }, 'the takeover raised the epoch')
    const late = await a.acquireLease('key-a', 'a:1', TTL_MS)
    t.match(late, { holder: 'key-b', epoch: 2 }, 'a, back late, cannot renew what b holds')
  })

  t.test(`${via}: a released lease is taken at once`, async t => {
    const [a, b] = await twoMasters(t, bouncer)
    await a.acquireLease('key-a', 'a:1', 60_000)
    t.equal((await b.acquireLease('key-b', 'b:1', 60_000)).holder, 'key-a')
    await a.releaseLease('key-a')
    t.equal((await a.readLease()).live, false)
    t.match(await b.acquireLease('key-b', 'b:1', 60_000), { holder: 'key-b', epoch: 2, live: true })
  })

  t.test(`${via}: commits are fenced: a master whose lease was taken over writes nothing`, async t => {
    const [a, b] = await twoMasters(t, bouncer)
    const held = await a.acquireLease('key-a', 'a:1', TTL_MS)
    a.setFence({ holder: 'key-a', epoch: held.epoch })
    const [entry] = await a.commit(put(), sign)
    t.equal(entry.seq, 1, 'the holder writes')

    await waitFor('b to take the lease over', async () => (await b.acquireLease('key-b', 'b:1', 60_000)).holder === 'key-b' ? true : undefined, { timeoutMs: 15_000, everyMs: 200 })
    const err = await rejection(a.commit(put(), sign))
    t.equal(err.code, 'not_active', 'the former holder\'s commit is refused')
    t.match(err.message, /no longer holds the writer lease/)
    t.equal((await a.head()).seq, 1, 'and wrote nothing')

    const lease = await b.readLease()
    b.setFence({ holder: 'key-b', epoch: lease.epoch })
    const [next] = await b.commit(put(), sign)
    t.equal(next.seq, 2, 'the new holder goes on from the same head')
    a.setFence(undefined)
  })

  t.test(`${via}: a fence naming an epoch that is not the lease's is refused even while the holder matches`, async t => {
    const [a] = await twoMasters(t, bouncer)
    const held = await a.acquireLease('key-a', 'a:1', 60_000)
    a.setFence({ holder: 'key-a', epoch: held.epoch + 1 })
    t.equal((await rejection(a.commit(put(), sign))).code, 'not_active')
    a.setFence({ holder: 'key-a', epoch: held.epoch })
    t.equal((await a.commit(put(), sign))[0].seq, 1)
  })

  t.test(`${via}: masters register their keys; a second registration refreshes the row`, async t => {
    const [a, b] = await twoMasters(t, bouncer)
    t.same(await a.registeredMasters(), [], 'none at first')
    await a.registerMaster({ key: 'key-a', name: 'master-a', address: 'a:1' })
    await b.registerMaster({ key: 'key-b', name: 'master-b', address: 'b:1' })
    const [first] = await b.registeredMasters()
    await a.registerMaster({ key: 'key-a', name: 'master-a2', address: 'a:2' })
    const masters = await b.registeredMasters()
    t.same(masters.map(m => [m.key, m.name, m.address]), [['key-a', 'master-a2', 'a:2'], ['key-b', 'master-b', 'b:1']], 'oldest first, the refreshed row updated in place')
    t.equal(masters[0].registered.getTime(), first.registered.getTime(), 'a refresh keeps the registration time')
    t.ok(masters[0].seen.getTime() >= first.seen.getTime(), 'and moves seen on')
  })
}

leaseSuite(t, 'direct')

t.test('through PgBouncer (transaction pooling)', async t => {
  leaseSuite(t, 'pgbouncer', await startPgBouncer(t))
})
