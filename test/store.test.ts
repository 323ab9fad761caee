import { randomBytes } from 'node:crypto'
import { readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { Level } from 'level'
import pg from 'pg'
import { LedgerMeshError } from '../src/base/errors.js'
import { canonicalJson, sha256Hex } from '../src/policies/canonical.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import type { JsonValue, Policy } from '../src/policies/policy.js'
import { type Entry, type LedgerOp, GENESIS_HASH, chainEntries, verifyChainLinks } from '../src/ledger/entry.js'
import { type Head, verifyHead } from '../src/ledger/head.js'
import { checkpointSigner } from './helpers/checkpoints.js'
import type { LedgerStore } from '../src/ledger/store.js'
import { APPEND_CHUNK_BYTES, LevelStore } from '../src/ledger/level-store.js'
import { PgStore } from '../src/ledger/pg-store.js'
import { sqlLiteral, withLiterals } from '../src/ledger/pg-write.js'
import { openStore } from '../src/ledger/open-store.js'
import { createTestDatabase, pgQuery, testServer } from './helpers/pg.js'
import { startPgBouncer } from './helpers/pgbouncer.js'
import { tmpDir } from './helpers/tmp.js'

/**
 * One suite for every LedgerStore: each implementation must pass the same checks. A
 * `FreshStorage` gives a subtest its own empty storage (a directory, a database) and returns a
 * function making store instances over it, so a test can reopen the same data or run two
 * stores against it.
 */
type FreshStorage = (t: Test) => Promise<() => LedgerStore>

const signer = new Ed25519Signer(randomBytes(32))
const sign = checkpointSigner(signer)

/** A simple unsigned policy with a unique id: the store never checks signatures. */
function workerPolicy (fields: Record<string, JsonValue> = {}): Policy {
  return { worker: { name: 'w', company: 'acme', ip: '10.0.0.1', ...fields, id: sha256Hex(randomBytes(16)) } }
}

function puts (count: number): LedgerOp[] {
  return Array.from({ length: count }, (_, i) => ({ op: 'put' as const, policy: workerPolicy({ name: `w${i}` }) }))
}

function tombstone (targetId: string): LedgerOp {
  return { op: 'delete', policy: { delete: { policy_id: targetId, id: sha256Hex(randomBytes(16)) } } }
}

/** Makes a store over the storage, opens it, and closes it when the test ends. */
async function opened<S extends LedgerStore> (t: Test, makeStore: () => S): Promise<S> {
  const store = makeStore()
  await store.open()
  t.teardown(async () => { await store.close() })
  return store
}

async function rejectsWithCode (t: Test, promise: Promise<unknown>, code: string, message: string): Promise<LedgerMeshError | undefined> {
  try {
    await promise
  } catch (err) {
    t.ok(err instanceof LedgerMeshError, `${message}: a LedgerMeshError`)
    t.equal((err as LedgerMeshError).code, code, `${message}: code ${code}`)
    return err as LedgerMeshError
  }
  t.fail(`${message}: expected a rejection with code ${code}`)
  return undefined
}

async function allEntries (store: LedgerStore): Promise<Entry[]> {
  return await store.range(1, Number.MAX_SAFE_INTEGER)
}

function checkChain (t: Test, entries: Entry[], count: number): void {
  t.equal(entries.length, count, `${count} entries`)
  t.same(entries.map((entry) => entry.seq), Array.from({ length: count }, (_, i) => i + 1), 'seqs 1..n with no gap')
  t.equal(verifyChainLinks({ seq: 0, hash: GENESIS_HASH }, entries), undefined, 'every chain link verifies')
}

function storeSuite (t: Test, name: string, freshStorage: FreshStorage): void {
  t.test(`${name}: an empty store`, async (t) => {
    const store = await opened(t, await freshStorage(t))
    t.same(await store.head(), { seq: 0, hash: GENESIS_HASH }, 'head is seq 0 at the genesis hash')
    t.equal(await store.signedHead(), undefined, 'no signed head')
    t.same(await store.range(1, 10), [], 'no entries')
    t.same(await store.commit([], sign), [], 'committing nothing returns nothing')
  })

  t.test(`${name}: commit chains entries and stores the signed head`, async (t) => {
    const store = await opened(t, await freshStorage(t))
    const ops = puts(5)
    const entries = await store.commit(ops, sign)
    t.same(entries.map((entry) => entry.seq), [1, 2, 3, 4, 5], 'seqs 1..5')
    t.same(entries, chainEntries({ seq: 0, hash: GENESIS_HASH }, ops), 'the entries chainEntries makes')
    const stored = await allEntries(store)
    checkChain(t, stored, 5)
    t.same(stored, entries, 'range returns what commit returned')
    t.same(await store.head(), { seq: 5, hash: entries[4].hash }, 'head is the last entry')
    const signed = await store.signedHead()
    t.ok(signed !== undefined && verifyHead(signed, signer.publicKey), 'the signed head verifies under the master key')
    t.match(signed, { seq: 5, hash: entries[4].hash }, 'the signed head covers the last entry')

    const more = await store.commit(puts(2), sign)
    t.same(more.map((entry) => entry.seq), [6, 7], 'a second commit continues the chain')
    checkChain(t, await allEntries(store), 7)
  })

  t.test(`${name}: duplicate ids are rejected and nothing is written`, async (t) => {
    const store = await opened(t, await freshStorage(t))
    const ops = puts(3)
    await store.commit(ops, sign)
    const head = await store.head()
    const signed = await store.signedHead()

    const inLog = await rejectsWithCode(t, store.commit([...puts(2), ops[1]], sign), 'duplicate_id', 'an id already in the log')
    t.equal(inLog?.details.id, ops[1].policy.worker.id, 'the error names the duplicate id')
    t.match(inLog?.message, /is already in the ledger/)
    const again = puts(1)[0]
    const inBatch = await rejectsWithCode(t, store.commit([again, ...puts(1), again], sign), 'duplicate_id', 'the same id twice in one batch')
    t.equal(inBatch?.details.id, again.policy.worker.id, 'the error names the duplicate id')

    t.same(await store.head(), head, 'head unchanged')
    t.same(await store.signedHead(), signed, 'signed head unchanged')
    t.equal((await allEntries(store)).length, 3, 'no entries written')
    t.equal((await store.commit([again], sign))[0].seq, 4, 'the rejected batch left no trace: its ids still commit, at seq 4')
  })

  t.test(`${name}: a batch with several ids already in the log names them all, in batch order`, async (t) => {
    const store = await opened(t, await freshStorage(t))
    const [live, retired] = puts(2)
    const retiredId = retired.policy.worker.id as string
    await store.commit([live, retired, tombstone(retiredId)], sign)
    const head = await store.head()
    const batch = [...puts(1), retired, ...puts(2), live, ...puts(1)]
    const err = await rejectsWithCode(t, store.commit(batch, sign), 'duplicate_id', 'a live id and a deleted (retired) id')
    t.same(err?.details.ids, [retiredId, live.policy.worker.id], 'details.ids carries both refused ids')
    t.equal(err?.details.id, retiredId, 'details.id is the first')
    t.same(await store.head(), head, 'head unchanged')
    t.equal((await allEntries(store)).length, 3, 'nothing written')
  })

  t.test(`${name}: a batch of more than one insert statement (1000 rows) with a tombstone is refused or written whole`, async (t) => {
    const store = await opened(t, await freshStorage(t))
    const [target, present] = puts(2)
    await store.commit([target, present], sign)
    const signed = await store.signedHead()
    const big = puts(1200)
    const kill = tombstone(target.policy.worker.id as string)
    const err = await rejectsWithCode(t, store.commit([...big, kill, present], sign), 'duplicate_id', 'an id already present at the end of the batch')
    t.same(err?.details.ids, [present.policy.worker.id], 'names it')
    t.same(await store.signedHead(), signed, 'signed head unchanged')
    t.equal((await allEntries(store)).length, 2, 'nothing written')
    const entries = await store.commit([...big, kill], sign)
    t.equal(entries.length, 1201, 'the same batch without it commits')
    checkChain(t, await allEntries(store), 1203)
    t.match(await store.signedHead(), { seq: 1203, hash: entries[1200].hash }, 'the signed head covers its last entry')
  })

  t.test(`${name}: range honours fromSeq and limit`, async (t) => {
    const store = await opened(t, await freshStorage(t))
    await store.commit(puts(10), sign)
    t.same((await store.range(4, 3)).map((entry) => entry.seq), [4, 5, 6], 'from 4, three entries')
    t.same((await store.range(9, 100)).map((entry) => entry.seq), [9, 10], 'limit past the end')
    t.same((await store.range(0, 2)).map((entry) => entry.seq), [1, 2], 'from 0 starts at the first entry')
    t.same(await store.range(11, 5), [], 'nothing after the head')
    t.same(await store.range(1, 0), [], 'limit 0')
    // one entry: a point read where the entry is, the first one after where it is not
    t.same((await store.range(7, 1)).map((entry) => entry.seq), [7], 'one entry')
    t.same((await store.range(7, 1.5)).map((entry) => entry.seq), [7], 'a limit of 1.5 is 1')
    t.same((await store.range(0, 1)).map((entry) => entry.seq), [1], 'one entry from 0')
    t.same((await store.range(3.5, 1)).map((entry) => entry.seq), [4], 'one entry from between two')
    t.same(await store.range(11, 1), [], 'one entry after the head')
    t.same(await store.range(7, 0.5), [], 'a limit under 1')
  })

  t.test(`${name}: entriesAt reads the entries at given seqs, in the order asked (a snapshot's)`, async (t) => {
    const store = await opened(t, await freshStorage(t))
    const written = await store.commit(puts(12), sign)
    t.same((await store.entriesAt([9, 2, 12, 5])).map(e => e.seq), [9, 2, 12, 5], 'in the order asked')
    t.same((await store.entriesAt([7]))[0], (await store.range(7, 1))[0], 'the same entry range reads')
    t.equal((await store.entriesAt([3]))[0].hash, written[2].hash)
    t.same(await store.entriesAt([]), [], 'none asked, none read')
    await rejectsWithCode(t, store.entriesAt([4, 13]), 'not_found', 'a seq past the head')
  })

  t.test(`${name}: append continues the stored head or is rejected as a conflict`, async (t) => {
    const master = await opened(t, await freshStorage(t))
    const replica = await opened(t, await freshStorage(t))
    const entries = await master.commit(puts(6), sign)
    const headAt = (seq: number) => sign({ seq, hash: entries[seq - 1].hash })

    const head3 = headAt(3)
    await replica.append(entries.slice(0, 3), head3)
    t.same(await replica.head(), { seq: 3, hash: entries[2].hash }, 'head after the first batch')
    t.same(await replica.signedHead(), head3, 'its signed head is stored')

    await rejectsWithCode(t, replica.append(entries.slice(4, 6), headAt(6)), 'conflict', 'a batch leaving a gap')
    const forged = { ...entries[3], prevHash: 'f'.repeat(64) }
    await rejectsWithCode(t, replica.append([forged], sign({ seq: 4, hash: forged.hash })), 'conflict', 'a batch linking to another prev_hash')
    await rejectsWithCode(t, replica.append(entries.slice(0, 2), headAt(2)), 'conflict', 'a batch the store already has')
    await rejectsWithCode(t, replica.append(entries.slice(3, 5), headAt(6)), 'conflict', 'a signed head beyond the batch')
    t.same(await replica.head(), { seq: 3, hash: entries[2].hash }, 'head unchanged by the rejected batches')

    const head6 = headAt(6)
    await replica.append(entries.slice(3), head6)
    t.same(await allEntries(replica), entries, 'the replica holds exactly the master log')
    t.same(await replica.signedHead(), head6, 'the new signed head replaces the old one')
  })

  t.test(`${name}: truncate removes later entries and the signed head`, async (t) => {
    const store = await opened(t, await freshStorage(t))
    const ops = puts(6)
    const entries = await store.commit(ops, sign)
    await store.truncate(3)
    t.same(await store.head(), { seq: 3, hash: entries[2].hash }, 'head is entry 3')
    t.equal(await store.signedHead(), undefined, 'signed head removed')
    t.same(await allEntries(store), entries.slice(0, 3), 'entries 1..3 remain')
    const recommitted = await store.commit(ops.slice(3), sign)
    t.same(recommitted, entries.slice(3), 'the removed ids commit again, to the same entries')
    checkChain(t, await allEntries(store), 6)

    await store.truncate(0)
    t.same(await store.head(), { seq: 0, hash: GENESIS_HASH }, 'truncate(0) empties the log')
    t.same(await allEntries(store), [])
    t.equal((await store.commit(ops, sign)).length, 6, 'and every id is free again')
  })

  t.test(`${name}: meta values`, async (t) => {
    const store = await opened(t, await freshStorage(t))
    t.equal(await store.getMeta('master_public_key'), undefined, 'missing key')
    await store.setMeta('master_public_key', signer.publicKey)
    t.equal(await store.getMeta('master_public_key'), signer.publicKey)
    await store.setMeta('master_public_key', 'replaced')
    t.equal(await store.getMeta('master_public_key'), 'replaced', 'set overwrites')
    const awkward = "x'); DROP TABLE ledger_meta; -- $1 $$ \\"
    await store.setMeta(awkward, awkward)
    t.equal(await store.getMeta(awkward), awkward, 'keys and values that look like SQL are data')
  })

  t.test(`${name}: everything survives close and reopen`, async (t) => {
    const makeStore = await freshStorage(t)
    const first = makeStore()
    await first.open()
    const ops = puts(4)
    const entries = await first.commit(ops, sign)
    const signed = await first.signedHead()
    await first.setMeta('k', 'v')
    await first.close()
    await first.close() // closing twice is harmless

    const second = await opened(t, makeStore)
    t.same(await second.head(), { seq: 4, hash: entries[3].hash }, 'head')
    t.same(await second.signedHead(), signed, 'signed head')
    t.same(await allEntries(second), entries, 'entries')
    t.equal(await second.getMeta('k'), 'v', 'meta')
    await rejectsWithCode(t, second.commit([ops[0]], sign), 'duplicate_id', 'duplicate detection after reopen')
    t.equal((await second.commit(puts(1), sign))[0].seq, 5, 'commits continue at seq 5')
  })

  t.test(`${name}: concurrent commits are serialised with no gaps`, async (t) => {
    const store = await opened(t, await freshStorage(t))
    const batches = await Promise.all(Array.from({ length: 20 }, async () => await store.commit(puts(5), sign)))
    for (const batch of batches) {
      t.same(batch.map((entry) => entry.seq - batch[0].seq), [0, 1, 2, 3, 4], 'each batch has consecutive seqs')
    }
    checkChain(t, await allEntries(store), 100)
    const signed = await store.signedHead()
    t.match(signed, await store.head(), 'the signed head is the final head')
  })

  t.test(`${name}: values round-trip exactly (canonical bytes and hashes)`, async (t) => {
    const store = await opened(t, await freshStorage(t))
    const injection = "x'); DROP TABLE ledger; --"
    const policies: Policy[] = [
      workerPolicy({ name: injection, company: injection, [injection]: injection }),
      workerPolicy({ floats: [0.1, 1e21, 1e-7, 5e-324, 1.7976931348623157e308, -0.5, 0.30000000000000004, 2 ** 53 - 1] }),
      workerPolicy({ text: 'héllo 𝄞 日本 \u2028 "q" \\ \n\t', nested: [[1, [2, [3, []]]], {}, [{ x: null, y: true, 'é': 'e\u0301' }]] }),
      workerPolicy({ nul: 'a\u0000b', control: '\u0001\u001f\u007f', backslash: '\\u0000', surrogates: '\ud83d\ude00' }),
      { 'custom type with spaces': { '': 'empty key', id: sha256Hex('custom') } }
    ]
    const entries = await store.commit(policies.map((policy) => ({ op: 'put', policy })), sign)
    const stored = await allEntries(store)
    t.same(stored.map((entry) => canonicalJson(entry.policy)), policies.map((policy) => canonicalJson(policy)), 'each policy canonicalizes to the same bytes')
    t.equal(stored[0].policy.worker.name, injection, 'SQL text is stored verbatim')
    t.equal(verifyChainLinks({ seq: 0, hash: GENESIS_HASH }, stored), undefined, 'hashes recompute from the stored policies')
    t.same(stored.map((entry) => entry.hash), entries.map((entry) => entry.hash))
    t.equal((await store.commit(puts(1), sign))[0].seq, 6, 'the store still works afterwards')

    const unhashable = workerPolicy({ lone: 'a\ud800b' })
    await rejectsWithCode(t, store.commit([{ op: 'put', policy: unhashable }], sign), 'bad_policy', 'a policy with no canonical form (lone surrogate)')
    t.equal((await store.head()).seq, 6, 'and nothing was written')
  })
}

// --- LevelDB -------------------------------------------------------------------------------

const levelStorage: FreshStorage = async (t) => {
  const path = join(await tmpDir(t), 'ledger')
  return () => new LevelStore({ path })
}

t.test('LevelStore', async (t) => {
  storeSuite(t, 'level', levelStorage)

  t.test('level: corrupt database files give store_unavailable naming the path', async (t) => {
    const path = join(await tmpDir(t), 'ledger')
    const store = new LevelStore({ path })
    await store.open()
    await store.commit(puts(3), sign)
    await store.close()
    for (const file of await readdir(path)) {
      if (file === 'CURRENT' || file.startsWith('MANIFEST') || file.endsWith('.ldb') || file.endsWith('.log')) {
        await writeFile(join(path, file), 'garbage, not LevelDB')
      }
    }
    const reopened = new LevelStore({ path })
    const err = await rejectsWithCode(t, reopened.open(), 'store_unavailable', 'open on corrupt files')
    t.match(err?.message, path, 'the message names the directory')
    t.match(err?.message, /Corruption|IO error/, 'and the cause')
    await reopened.close()
  })

  t.test('level: a damaged table file is reported at open or on read', async (t) => {
    const path = join(await tmpDir(t), 'ledger')
    const store = new LevelStore({ path })
    await store.open()
    await store.commit(puts(50), sign)
    await store.close()
    await store.open() // reopening flushes the write-ahead log into a .ldb table file
    await store.close()
    const tables = (await readdir(path)).filter((file) => file.endsWith('.ldb'))
    t.ok(tables.length > 0, 'there is a table file to damage')
    for (const file of tables) await writeFile(join(path, file), Buffer.alloc(4096, 7))
    const reopened = new LevelStore({ path })
    t.teardown(async () => { await reopened.close() })
    const err = await rejectsWithCode(t, reopened.open().then(async () => await reopened.range(1, 100)), 'store_unavailable', 'open or range over a damaged table')
    t.match(err?.message, path, 'the message names the directory')
    t.match(err?.message, /Corruption|IO error/, 'and the cause')
  })

  t.test('level: an entry that does not decode is a clear chain_broken error from range', async (t) => {
    const path = join(await tmpDir(t), 'ledger')
    const store = new LevelStore({ path })
    await store.open()
    await store.commit(puts(3), sign)
    await store.close()
    const raw = new Level<string, string>(path, { valueEncoding: 'utf8' })
    await raw.sublevel<string, string>('entry', { valueEncoding: 'utf8' }).put('0000000000000002', '{"seq": 2, "op": "put"')
    await raw.close()
    const reopened = await opened(t, () => new LevelStore({ path }))
    const err = await rejectsWithCode(t, reopened.range(1, 10), 'chain_broken', 'range over an undecodable value')
    t.match(err?.message, /entry 2 in .* is not valid JSON/, 'names the entry and the problem')
    t.match(err?.message, path)
    t.match((await rejectsWithCode(t, reopened.range(2, 1), 'chain_broken', 'a read of that one entry'))?.message, /entry 2 in .* is not valid JSON/)
  })

  t.test('level: a directory another store holds open is unavailable, not a hang', async (t) => {
    const path = join(await tmpDir(t), 'ledger')
    await opened(t, () => new LevelStore({ path }))
    const err = await rejectsWithCode(t, new LevelStore({ path }).open(), 'store_unavailable', 'second open of a locked directory')
    t.match(err?.message, path)
    t.match(err?.message, /lock/i)
  })

  t.test('level: an append larger than a chunk is written in several batches, the head last', async (t) => {
    const master = await opened(t, await levelStorage(t))
    // 300 policies of a hundredth of a chunk each: about three chunks
    const big = Array.from({ length: 300 }, (_, i) => ({ op: 'put' as const, policy: workerPolicy({ name: `w${i}`, blob: 'x'.repeat(APPEND_CHUNK_BYTES / 100) }) }))
    const entries = await master.commit(big, sign)
    const path = join(await tmpDir(t), 'ledger')
    const replica = new LevelStore({ path })
    await replica.open()
    const raw = (replica as unknown as { db: Level<string, string> }).db
    // count the batches the append writes, and whether each moved the head
    const writes: Array<{ rows: number, head: boolean }> = []
    const makeBatch = raw.batch.bind(raw) as () => ReturnType<typeof raw.batch>
    Object.assign(raw, {
      batch: () => {
        const batch = makeBatch()
        const write = batch.write.bind(batch) as (options: object) => Promise<void>
        let head = false
        const put = batch.put.bind(batch) as (key: string, value: string, options?: { sublevel?: { prefix: string } }) => typeof batch
        Object.assign(batch, {
          put: (key: string, value: string, options?: { sublevel?: { prefix: string } }) => { head ||= options?.sublevel?.prefix === '!head!'; return put(key, value, options) },
          write: async (options: object) => { writes.push({ rows: batch.length, head }); await write(options) }
        })
        return batch
      }
    })
    await replica.append(entries, sign({ seq: 300, hash: entries[299].hash }))
    t.ok(writes.length >= 3, `written in ${writes.length} batches`)
    t.same(writes.map(w => w.head), writes.map((_, i) => i === writes.length - 1), 'only the last one writes the head')
    t.same((await replica.range(1, 1000)).map(e => e.hash), entries.map(e => e.hash), 'every entry reads back')
    t.equal((await replica.head()).seq, 300)
    await replica.close()
  })

  t.test('level: entry rows past the head (an append a crash cut short) are dropped on open', async (t) => {
    const path = join(await tmpDir(t), 'ledger')
    const master = await opened(t, await levelStorage(t))
    const entries = await master.commit(puts(6), sign)
    const store = new LevelStore({ path })
    await store.open()
    await store.append(entries.slice(0, 3), sign({ seq: 3, hash: entries[2].hash }))
    await store.close()
    // what writing ahead leaves when the process dies before the head's batch: rows 4 and 5
    const raw = new Level<string, string>(path, { valueEncoding: 'utf8' })
    const rows = raw.sublevel<string, string>('entry', { valueEncoding: 'utf8' })
    for (const entry of entries.slice(3, 5)) await rows.put(String(entry.seq).padStart(16, '0'), JSON.stringify(entry))
    await raw.close()

    const reopened = await opened(t, () => new LevelStore({ path }))
    t.equal((await reopened.head()).seq, 3, 'the head is where the last whole append left it')
    t.same((await reopened.range(1, 100)).map(e => e.seq), [1, 2, 3], 'the rows past it are gone')
    await reopened.append(entries.slice(3), sign({ seq: 6, hash: entries[5].hash }))
    t.same((await reopened.range(1, 100)).map(e => e.hash), entries.map(e => e.hash), 'and the log continues from the head')
  })

  t.test('level: using a store that is not open is store_unavailable', async (t) => {
    const store = new LevelStore({ path: join(await tmpDir(t), 'ledger') })
    await rejectsWithCode(t, store.head(), 'store_unavailable', 'head() before open()')
  })

})

// --- PostgreSQL ----------------------------------------------------------------------------

const pgStorage: FreshStorage = async (t) => {
  const database = await createTestDatabase(t)
  return () => new PgStore(database)
}

// Sequential on purpose: concurrent CREATE DATABASE calls queue on the template and got slower.
t.test('PgStore', async (t) => {
  storeSuite(t, 'psql', pgStorage)

  t.test('psql: the ledger table has AnyLog columns and fills them from the policy', async (t) => {
    const database = await createTestDatabase(t)
    const store = await opened(t, () => new PgStore(database))
    const columns = await pgQuery<{ column_name: string }>(database,
      "SELECT column_name FROM information_schema.columns WHERE table_name = 'ledger' AND table_schema = 'public'")
    const names = columns.map((row) => row.column_name)
    for (const column of ['policy_type', 'policy_id', 'company', 'date', 'host', 'status', 'policy', 'seq', 'op', 'prev_hash', 'hash']) {
      t.ok(names.includes(column), `column ${column}`)
    }
    const unique = await pgQuery(database, `SELECT 1 FROM pg_indexes WHERE tablename = 'ledger' AND indexdef LIKE '%UNIQUE%(policy_id)%'`)
    t.equal(unique.length, 1, 'policy_id is unique')

    const policy: Policy = { master: { name: 'm1', company: 'Acme', ip: '10.0.0.9', date: '2024-01-02T03:04:05.000006Z', id: sha256Hex('m1') } }
    const byHostname: Policy = { slave: { name: 's1', hostname: 'slave-1.local', id: sha256Hex('s1') } }
    await store.commit([{ op: 'put', policy }, { op: 'put', policy: byHostname }], sign)
    const rows = await pgQuery(database, 'SELECT policy_type, policy_id, company, date, host, status, policy, seq, op FROM ledger ORDER BY seq')
    t.same(rows, [
      { policy_type: 'master', policy_id: sha256Hex('m1'), company: 'Acme', date: '2024-01-02T03:04:05.000006Z', host: '10.0.0.9', status: 'active', policy, seq: '1', op: 'put' },
      { policy_type: 'slave', policy_id: sha256Hex('s1'), company: null, date: null, host: 'slave-1.local', status: 'active', policy: byHostname, seq: '2', op: 'put' }
    ], 'one row per entry, AnyLog columns filled, policy as jsonb')
    const [{ name }] = await pgQuery<{ name: string }>(database, "SELECT policy->'master'->>'name' AS name FROM ledger WHERE policy_type = 'master'")
    t.equal(name, 'm1', 'the jsonb policy is queryable')
  })

  t.test('psql: a delete marks its target deleted; truncating the tombstone makes it active again', async (t) => {
    const database = await createTestDatabase(t)
    const store = await opened(t, () => new PgStore(database))
    const [target, other] = puts(2)
    const targetId = target.policy.worker.id as string
    const otherId = other.policy.worker.id as string
    await store.commit([target, other], sign)
    const kill = tombstone(targetId)
    await store.commit([kill], sign)
    const status = async () => Object.fromEntries((await pgQuery<{ policy_id: string, status: string }>(database, 'SELECT policy_id, status FROM ledger'))
      .map((row) => [row.policy_id, row.status]))
    t.same(await status(), { [targetId]: 'deleted', [otherId]: 'active', [kill.policy.delete.id as string]: 'active' }, 'only the target is deleted')

    const putAndDelete = puts(1)[0]
    await store.commit([putAndDelete, tombstone(putAndDelete.policy.worker.id as string)], sign)
    t.equal((await status())[putAndDelete.policy.worker.id as string], 'deleted', 'a put and its delete in one batch')

    await store.truncate(2)
    t.same(await status(), { [targetId]: 'active', [otherId]: 'active' }, 'the target is live again once its tombstone is gone')
  })

  t.test('psql: a refused commit leaves no transaction open and no row changed', async (t) => {
    const database = await createTestDatabase(t)
    const store = await opened(t, () => new PgStore(database))
    const [target, present] = puts(2)
    const targetId = target.policy.worker.id as string
    await store.commit([target, present], sign)
    const openTransactions = async () => (await pgQuery(database,
      "SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND state LIKE 'idle in transaction%'", [database.database])).length
    // one statement and COMMIT in one message; then several statements (a tombstone, 1000+ rows)
    for (const batch of [[...puts(1), present], [tombstone(targetId), present], [...puts(1001), present]]) {
      const err = await rejectsWithCode(t, store.commit(batch, sign), 'duplicate_id', `a batch of ${batch.length}`)
      t.same(err?.details.ids, [present.policy.worker.id], 'names the present id')
      t.equal(await openTransactions(), 0, 'no connection is left inside a transaction')
      const rows = await pgQuery<{ policy_id: string, status: string }>(database, 'SELECT policy_id, status FROM ledger ORDER BY seq')
      t.same(rows.map((row) => row.status), ['active', 'active'], 'the two rows, both still active (the tombstone target too)')
    }
    t.equal((await store.commit(puts(1), sign))[0].seq, 3, 'the next commit continues at seq 3')
  })

  t.test('psql: sqlLiteral writes strings PostgreSQL reads back exactly, and refuses what it cannot write', async (t) => {
    const database = await createTestDatabase(t)
    const strings = ["it's", 'back\\slash \\', "\\'; DROP TABLE ledger; --", '$1 $$ $a$', 'héllo 𝄞 \n\t\r', '']
    const rows = await pgQuery<{ v: string | null }>(database, strings.map((value) => `SELECT ${sqlLiteral(value)}::text AS v`).join(' UNION ALL '))
    t.same(rows.map((row) => row.v), strings, 'each string comes back as it went')
    t.equal(sqlLiteral(null), 'NULL')
    t.equal(sqlLiteral(42), '42')
    t.throws(() => sqlLiteral('a\u0000b'), { code: 'bad_policy' }, 'a NUL would cut the query text short: refused')
    t.throws(() => sqlLiteral(1.5), { code: 'internal' }, 'only safe integers')
    t.throws(() => sqlLiteral(2 ** 53), { code: 'internal' })
    t.throws(() => sqlLiteral(undefined), { code: 'internal' })

    const text = withLiterals('SELECT $2::text AS s, -$1 AS n, $3::double precision AS f, $4::text AS z', [-1, "it's $1", 0.25, null])
    t.same(await pgQuery(database, text), [{ s: "it's $1", n: 1, f: 0.25, z: null }], 'withLiterals: a negative number stays a number (never `--`), a $ inside a value is not replaced')
    t.throws(() => withLiterals('SELECT $2', [1]), { code: 'internal' }, 'a parameter without a value')
  })

  t.test('psql: a replica appends a catch-up batch of more than one insert statement', async (t) => {
    const master = await opened(t, await pgStorage(t))
    const replica = await opened(t, await pgStorage(t))
    const entries = await master.commit(puts(2500), sign)
    const head = sign({ seq: 2500, hash: entries[2499].hash })
    await replica.append(entries, head)
    t.same(await allEntries(replica), entries, 'the replica holds the whole log')
    t.same(await replica.signedHead(), head, 'and the signed head')
    await replica.append([], head)
    t.same(await replica.signedHead(), head, 'an empty batch at the head is accepted')
  })

  t.test('psql: two stores on one database commit concurrently without gaps', async (t) => {
    const database = await createTestDatabase(t, { create: false })
    // Both open at once against a database that does not exist yet: creation races are handled.
    const [a, b] = await Promise.all([opened(t, () => new PgStore(database)), opened(t, () => new PgStore(database))])
    const commits = Array.from({ length: 20 }, async (_, i) => await (i % 2 === 0 ? a : b).commit(puts(5), sign))
    const batches = await Promise.all(commits)
    for (const batch of batches) t.same(batch.map((entry) => entry.seq - batch[0].seq), [0, 1, 2, 3, 4], 'consecutive seqs per batch')
    checkChain(t, await allEntries(a), 100)
    t.same(await b.head(), await a.head(), 'both see the same head')
    const signed = await b.signedHead()
    t.ok(signed !== undefined && signed.seq === 100 && verifyHead(signed, signer.publicKey), 'the signed head covers seq 100')
  })

  t.test('psql: the same id committed by two stores at once is accepted once', async (t) => {
    const database = await createTestDatabase(t)
    const a = await opened(t, () => new PgStore(database))
    const b = await opened(t, () => new PgStore(database))
    const op = puts(1)[0]
    const results = await Promise.allSettled([a.commit([op], sign), b.commit([op], sign)])
    t.equal(results.filter((result) => result.status === 'fulfilled').length, 1, 'one commit wins')
    const loser = results.find((result) => result.status === 'rejected')
    t.equal((loser as PromiseRejectedResult | undefined)?.reason?.code, 'duplicate_id', 'the other gets duplicate_id')
    checkChain(t, await allEntries(a), 1)
  })

  t.test('psql: open is idempotent, and a schema keeps the tables apart', async (t) => {
    const database = await createTestDatabase(t)
    const plain = await opened(t, () => new PgStore(database))
    await plain.open()
    const again = await opened(t, () => new PgStore(database))
    await plain.commit(puts(2), sign)
    t.equal((await again.head()).seq, 2, 'a second store over existing tables sees the log')

    const schemaStore = await opened(t, () => new PgStore({ ...database, schema: 'lm schema"x' }))
    t.same(await schemaStore.head(), { seq: 0, hash: GENESIS_HASH }, 'the schema has its own empty ledger')
    await schemaStore.commit(puts(1), sign)
    const rows = await pgQuery(database, 'SELECT seq FROM "lm schema""x".ledger')
    t.equal(rows.length, 1, 'rows go to the schema (an awkward name is quoted)')
    t.equal((await plain.head()).seq, 2, 'the public ledger is untouched')
  })

  t.test('psql: location, and an unreachable server is store_unavailable naming it', async (t) => {
    const server = testServer()
    const store = new PgStore({ ...server, port: 1, password: 'secret', database: 'nowhere' })
    t.equal(store.location, `postgres://${server.user}@${server.host}:1/nowhere`, 'location has no password')
    const err = await rejectsWithCode(t, store.open(), 'store_unavailable', 'open against a closed port')
    t.match(err?.message, `${server.host}:1/nowhere`, 'the message names host:port/database')
    t.notMatch(err?.message, /secret/, 'and never the password')
    await rejectsWithCode(t, store.head(), 'store_unavailable', 'using the store after a failed open')
  })

  t.test('psql: a dropped database mid-use is store_unavailable, not a crash', async (t) => {
    const database = await createTestDatabase(t)
    const store = await opened(t, () => new PgStore(database))
    await store.commit(puts(1), sign)
    await pgQuery({ ...database, database: 'postgres' }, `DROP DATABASE "${database.database}" WITH (FORCE)`)
    await rejectsWithCode(t, store.commit(puts(1), sign), 'store_unavailable', 'commit after the database vanished')
    await rejectsWithCode(t, store.head(), 'store_unavailable', 'head after the database vanished')
  })

})

// --- PostgreSQL through PgBouncer ------------------------------------------------------------

// Masters may reach a shared PostgreSQL through PgBouncer in transaction pooling mode: no
// startup parameters it does not know, no session state, no named prepared statements.
t.test('PgStore through PgBouncer (transaction pooling)', async (t) => {
  const bouncer = await startPgBouncer(t)
  storeSuite(t, 'pgbouncer', async (t) => {
    const database = bouncer.through(await createTestDatabase(t))
    return () => new PgStore(database)
  })

  t.test('pgbouncer: two stores create their missing database through it at once and share it', async (t) => {
    const database = bouncer.through(await createTestDatabase(t, { create: false }))
    const [a, b] = await Promise.all([opened(t, () => new PgStore(database)), opened(t, () => new PgStore(database))])
    await Promise.all([a.commit(puts(2), sign), b.commit(puts(3), sign)])
    checkChain(t, await allEntries(b), 5)
  })

  t.test('pgbouncer: the lock and statement timeouts still bound the store\'s statements', async (t) => {
    const direct = await createTestDatabase(t)
    const lockBound = await opened(t, () => new PgStore({ ...bouncer.through(direct), lockTimeoutMs: 300, statementTimeoutMs: 60_000 }))
    const statementBound = await opened(t, () => new PgStore({ ...bouncer.through(direct), lockTimeoutMs: 60_000, statementTimeoutMs: 300 }))
    await lockBound.commit(puts(1), sign)
    const holder = new pg.Client(direct)
    await holder.connect()
    t.teardown(async () => { await holder.end().catch(() => {}) })
    await holder.query('BEGIN; SELECT 1 FROM ledger_head WHERE id = 1 FOR UPDATE; SELECT 1 FROM ledger_master_lease WHERE id = 1 FOR UPDATE')

    const waited = await rejectsWithCode(t, lockBound.commit(puts(1), sign), 'timeout', 'a commit behind a held ledger lock (lock_timeout)')
    t.match(waited?.message, /waited more than 300 ms for the ledger lock/)
    for (const [what, attempt] of [['a commit', async () => await statementBound.commit(puts(1), sign)], ['a lease renewal', async () => await statementBound.acquireLease('key', 'a:1', 1000)]] as const) {
      const started = Date.now()
      const err = await rejectsWithCode(t, attempt(), 'timeout', `${what} blocked past the statement timeout`)
      t.equal(err?.details.causeCode, '57014', 'cancelled by the server (statement_timeout), not given up on by the client')
      t.ok(Date.now() - started < 2000, `after about 300 ms (${Date.now() - started} ms)`)
    }
    await holder.query('ROLLBACK')
    t.equal((await statementBound.commit(puts(1), sign))[0].seq, 2, 'once the locks are free the store writes on')
  })

  t.test('pgbouncer: nothing the store does outlives its transaction on the shared server connection', async (t) => {
    const single = await startPgBouncer(t, { poolSize: 1 })
    const database = single.through(await createTestDatabase(t))
    const store = await opened(t, () => new PgStore({ ...database, lockTimeoutMs: 1234, statementTimeoutMs: 4321 }))
    await store.commit(puts(2), sign)
    await rejectsWithCode(t, store.commit(puts(1).concat((await allEntries(store))[0]), sign), 'duplicate_id', 'a refused commit')
    await store.acquireLease('key', 'a:1', 60_000)
    await store.registerMaster({ key: 'key', name: 'm', address: 'a:1' })
    t.equal((await store.head()).seq, 2)
    const [settings] = await pgQuery<Record<string, string>>(database,
      `SELECT current_setting('statement_timeout') AS statement, current_setting('lock_timeout') AS lock,
              current_setting('idle_in_transaction_session_timeout') AS idle,
              (SELECT count(*) FROM pg_prepared_statements)::text AS prepared`)
    t.same(settings, { statement: '0', lock: '0', idle: '0', prepared: '0' },
      'the one server connection has no timeout and no prepared statement left from the store')
    const backends = await pgQuery(database, 'SELECT 1 FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database.database])
    t.equal(backends.length, 0, 'and it is the only one: the store\'s statements ran on it too')
  })
})

t.test('openStore builds the store a config names, without opening it', async (t) => {
  const level = await openStore({ type: 'level', path: '/tmp/x' })
  t.ok(level instanceof LevelStore)
  t.equal(level.kind, 'level')
  t.equal(level.location, '/tmp/x')
  const psql = await openStore({ type: 'psql', host: 'db', port: 5433, user: 'u', password: 'p', database: 'blockchain', schema: 's' })
  t.ok(psql instanceof PgStore)
  t.equal(psql.kind, 'psql')
  t.equal(psql.location, 'postgres://u@db:5433/blockchain?schema=s')
})
