import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { silentLogger } from '../src/base/logger.js'
import { type Entry, type LedgerOp, chainEntries } from '../src/ledger/entry.js'
import type { SignedHead } from '../src/ledger/head.js'
import { signedHeadFor } from './helpers/checkpoints.js'
import { Ledger } from '../src/ledger/ledger.js'
import { LevelStore } from '../src/ledger/level-store.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { preparePolicy, prepareTombstone } from '../src/policies/prepare.js'
import { policyBody } from '../src/policies/policy.js'
import { tmpDir } from './helpers/tmp.js'
import { ledgerAt, syncLedger } from './helpers/ledgers.js'

// Several masters: a replica trusts the first master's key (pinned) and the keys trusted
// masters declare on the ledger (`master_key` policies), and no other; each
// master signs heads with its own key.
const log = silentLogger()
const key = () => new Ed25519Signer(randomBytes(32))
const note = (author: Ed25519Signer): LedgerOp => ({ op: 'put', policy: preparePolicy({ note: { name: `n-${randomBytes(4).toString('hex')}` } }, author) })


/** Master a's ledger over a store another master (b) will open too, in which a has declared b's key; the caller closes it. */
async function sharedLedgerDeclaringB (t: Test): Promise<{ dir: string, path: string, a: Ed25519Signer, b: Ed25519Signer, first: Ledger }> {
  const dir = await tmpDir(t)
  const [a, b] = [key(), key()]
  const path = join(dir, 'shared')
  const first = new Ledger({ store: new LevelStore({ path }), log, masterSigner: a })
  await first.open()
  await first.submit({ op: 'put', policy: preparePolicy({ master_key: { name: 'master-b', key: b.publicKey } }, a) })
  return { dir, path, a, b, first }
}

/** A run of entries after the replica's head, signed by `signer` as a master would sign it. */
function run (replica: Ledger, ops: LedgerOp[], signer: Ed25519Signer): { entries: Entry[], head: SignedHead } {
  const entries = chainEntries(replica.head, ops)
  return { entries, head: signedHeadFor(replica, entries, signer) }
}


t.test('a replica trusts the keys trusted masters declare, and only those', async t => {
  const dir = await tmpDir(t)
  const a = key()
  const b = key()
  const c = key()
  const master = await ledgerAt(t, join(dir, 'a'), a)
  const replica = await ledgerAt(t, join(dir, 'replica'))
  await master.submit({ op: 'put', policy: preparePolicy({ master: { name: 'master-a' } }, a) })
  await master.submit({ op: 'put', policy: preparePolicy({ master_key: { name: 'master-b', key: b.publicKey } }, a) })
  await syncLedger(master, replica)
  t.same(new Set(replica.masterKeys), new Set([a.publicKey, b.publicKey]), 'a is pinned, b declared by a')

  const byB = run(replica, [note(b)], b)
  await replica.applyBatch(byB.entries, byB.head)
  t.equal(replica.head.seq, byB.head.seq, 'a head signed by b is accepted')

  const byC = run(replica, [note(c)], c)
  await t.rejects(replica.applyBatch(byC.entries, byC.head), { code: 'bad_signature', message: /not one a trusted master declared/ })
  t.equal(replica.head.seq, byB.head.seq, 'a head by an undeclared key changes nothing')

  // b declares c and c signs the run that holds the declaration: the run is judged with it
  const declared = run(replica, [{ op: 'put', policy: preparePolicy({ master_key: { name: 'master-c', key: c.publicKey } }, b) }, note(c)], c)
  t.throws(() => { replica.checkSignedHead(declared.head) }, { code: 'bad_signature' }, 'without the run, c is unknown')
  t.doesNotThrow(() => { replica.checkSignedHead(declared.head, { pending: declared.entries }) }, 'with it, c is declared')
  await replica.applyBatch(declared.entries, declared.head)
  t.ok(replica.masterKeys.includes(c.publicKey))
})

t.test('only a trusted master may declare another master\'s key', async t => {
  const dir = await tmpDir(t)
  const a = key()
  const stranger = key()
  const master = await ledgerAt(t, join(dir, 'a'), a)
  await master.submit({ op: 'put', policy: preparePolicy({ master: { name: 'master-a' } }, a) })
  await t.rejects(master.submit({ op: 'put', policy: preparePolicy({ master_key: { name: 'mine', key: stranger.publicKey } }, stranger) }), { code: 'unauthorized', message: /may not write master_key policies/ })
  t.same(master.masterKeys, [a.publicKey])
})

t.test('an admin cannot make a key a master: the master refuses it, and a replica refuses a run that holds it', async t => {
  const dir = await tmpDir(t)
  const a = key()
  const admin = key()
  const master = await ledgerAt(t, join(dir, 'a'), a)
  await master.submit({ op: 'put', policy: preparePolicy({ admin: { name: 'ops', key: admin.publicKey } }, a) })
  await t.rejects(master.submit({ op: 'put', policy: preparePolicy({ master_key: { name: 'mine', key: admin.publicKey } }, admin) }), { code: 'unauthorized', message: /may not write master_key policies: only a trusted master key may/ })
  t.same(master.masterKeys, [a.publicKey], 'the admin\'s key is no master\'s')

  const replica = await ledgerAt(t, join(dir, 'replica'))
  await syncLedger(master, replica)
  // a run a master signed anyway (a master that did not check): every replica refuses it whole
  const forged = run(replica, [{ op: 'put', policy: preparePolicy({ master_key: { name: 'mine', key: admin.publicKey } }, admin) }], a)
  await t.rejects(replica.applyBatch(forged.entries, forged.head), { code: 'unauthorized', message: /only a trusted master key may/ })
  t.same(replica.masterKeys, [a.publicKey])
})

t.test('a revoked master: its key is trusted no more, it orders nothing, and replicas refuse its heads', async t => {
  const { dir, path, a, b, first } = await sharedLedgerDeclaringB(t)
  const replica = await ledgerAt(t, join(dir, 'replica'))
  await syncLedger(first, replica)
  t.ok(replica.masterKeys.includes(b.publicKey), 'b is a master')
  await t.rejects(first.submit({ op: 'put', policy: preparePolicy({ revocation: { key: a.publicKey } }, a) }), { code: 'unauthorized', message: /may not revoke its own key/ }, 'a master does not revoke itself')
  await first.submit({ op: 'put', policy: preparePolicy({ revocation: { key: b.publicKey } }, a) })
  t.notOk(first.masterKeys.includes(b.publicKey), 'the master that revoked b trusts it no more')
  t.notOk(first.admits(b.publicKey), 'nor admits it (sync, leases)')
  await syncLedger(first, replica)
  t.same(replica.masterKeys, [a.publicKey], 'nor does a replica')
  await first.close()

  // b opens the shared database after its revocation: it may not order anything
  const second = await ledgerAt(t, path, b)
  await t.rejects(second.submit(note(b)), { code: 'unauthorized', message: /was revoked/ })
  await t.rejects(second.submit(note(a)), { code: 'unauthorized', message: /is revoked: it orders nothing more/ }, 'not even another key\'s insert')
  // a run b signs (as a master that did not check would): refused by the replica
  const byB = run(replica, [note(b)], b)
  await t.rejects(replica.applyBatch(byB.entries, byB.head), { code: 'bad_signature', message: /not one a trusted master declared/ })
})

t.test('a revoked admin: refused every write and every stream, and may not lift its own revocation', async t => {
  const dir = await tmpDir(t)
  const a = key()
  const admin = key()
  const master = await ledgerAt(t, join(dir, 'a'), a)
  await master.submit({ op: 'put', policy: preparePolicy({ admin: { name: 'ops', key: admin.publicKey } }, a) })
  await master.submit(note(admin))
  t.ok(master.admits(admin.publicKey), 'an admin takes part')
  const revocation = await master.submit({ op: 'put', policy: preparePolicy({ revocation: { key: admin.publicKey } }, a) })
  t.notOk(master.admits(admin.publicKey), 'revoked, it does not (an open network: a revocation binds all the same)')
  await t.rejects(master.submit(note(admin)), { code: 'unauthorized', message: /was revoked/ }, 'its next insert is refused')
  await t.rejects(master.submit({ op: 'put', policy: preparePolicy({ admin: { name: 'ops2', key: admin.publicKey } }, admin) }), { code: 'unauthorized', message: /was revoked/ }, 'as is any use of its admin rights')
  await t.rejects(master.submit({ op: 'delete', policy: prepareTombstone(String(policyBody(revocation.policy).id), admin) }), { code: 'unauthorized', message: /was revoked/ }, 'it cannot delete its own revocation')
})

t.test('another master opens a ledger its first master wrote, and trusts its own key once declared', async t => {
  const { dir, path, a, b, first } = await sharedLedgerDeclaringB(t)
  await first.close()
  const second = await ledgerAt(t, path, b)
  t.equal(second.masterKey, a.publicKey, 'the first master\'s key stays the pinned one')
  t.ok(second.masterKeys.includes(b.publicKey), 'and b is one of the masters')
  const entry = await second.submit(note(b))
  t.equal(entry.seq, 2, 'b writes, signing with its own key')
  t.equal(second.signedHead?.publicKey, b.publicKey)

  const replica = await ledgerAt(t, join(dir, 'replica'))
  await syncLedger(second, replica)
  t.equal(replica.head.seq, 2, 'a replica takes b\'s head: b is declared in what it applied')
})

t.test('a replica pinned to one key still refuses a store pinned to another', async t => {
  const dir = await tmpDir(t)
  const a = key()
  const path = join(dir, 'a')
  const master = new Ledger({ store: new LevelStore({ path }), log, masterSigner: a })
  await master.open()
  await master.submit(note(a))
  await master.close()
  const replica = new Ledger({ store: new LevelStore({ path }), log, masterKey: key().publicKey })
  await t.rejects(replica.open(), { code: 'chain_broken', message: /was written under master key/ })
  await replica.close().catch(() => {})
})
