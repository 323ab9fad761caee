import t from 'tap'
import pg from 'pg'
import { startNode, type NodeProcess } from './helpers/node-process.js'
import { createTestDatabase, pgQuery } from './helpers/pg.js'
import { waitFor } from './helpers/net.js'
import { metric } from './helpers/admission.js'
import { MAX_ADHOC_INDEXES } from '../src/ledger/state.js'

// The write path's promises through real node processes over REST, as a client sees them.

t.test('a local=true insert made while the master\'s PostgreSQL ledger is locked lands exactly once after the lock is released', async t => {
  const db = await createTestDatabase(t)
  const master = await startNode(t, {
    type: 'master',
    name: 'pgm',
    env: { DB_TYPE: 'psql', DB_IP: db.host, DB_PORT: db.port, DB_USER: db.user, DB_NAME: db.database }
  })
  const member = await startNode(t, { type: 'member', name: 'mem', env: { LEDGER_CONN: master.ledgerConn } })

  // Another transaction holds the row lock every commit takes: the master's commit times out.
  const holder = new pg.Client({ ...db })
  await holder.connect()
  t.teardown(async () => { await holder.end().catch(() => {}) })
  await holder.query('BEGIN')
  await holder.query('SELECT seq FROM ledger_head WHERE id = 1 FOR UPDATE')

  const reply = await member.command('blockchain insert where policy=!p and local=true and master=!ledger_conn', {
    method: 'POST',
    body: '<p = {"probe": {"name": "while-locked"}}>'
  })
  t.equal(reply.status, 200, reply.text)
  t.match(reply.text, /inserted \(local\)/, 'the member keeps it in its outbox')
  t.match(member.logs(), /"code":"timeout"/, 'because the master answered timeout')
  t.equal((await member.ok('get status where format=json')).json.sync.outbox, 1, 'one insert waits in the outbox')

  await holder.query('ROLLBACK')
  await waitFor('the outbox insert to reach the master', async () =>
    (await master.ok('blockchain get probe where name=while-locked bring.count')).text === '1' ? true : undefined, { timeoutMs: 60_000 })
  await waitFor('the outbox to drain', async () => (await member.ok('get status where format=json')).json.sync.outbox === 0 ? true : undefined, { timeoutMs: 30_000 })
  const rows = await pgQuery<{ n: string }>(db, "SELECT count(*) AS n FROM ledger WHERE policy_type = 'probe'")
  t.equal(Number(rows[0].n), 1, 'exactly one row in the master\'s table')
  await waitFor('the member to see it ordered', async () => {
    const got = (await member.ok('blockchain get probe')).json
    return got.length === 1 && got[0].probe.ledger === 'global' ? true : undefined
  }, { timeoutMs: 30_000 })
  t.equal((await member.ok('get status where format=json')).json.sync.outbox_dropped, 0, 'nothing was dropped')
})

t.test('over REST: a deleted policy re-inserted inside a burst of 20 fails alone; made-up fields past the index cap cost no memory', async t => {
  const master = await startNode(t, { type: 'master', name: 'burst' })
  const body = (name: string) => `<p = {"probe": {"name": "${name}"}}>`
  const insert = async (name: string) => await master.command('blockchain insert where policy=!p', { method: 'POST', body: body(name) })

  const first = await insert('reborn')
  t.equal(first.status, 200, first.text)
  const [reborn] = (await master.ok('blockchain get probe where name=reborn')).json
  t.equal((await master.command(`blockchain delete policy where id = ${String(reborn.probe.id)}`)).status, 200)
  t.equal((await master.ok('blockchain get probe bring.count')).text, '0')

  const names = Array.from({ length: 20 }, (_, i) => i === 10 ? 'reborn' : `burst-${i}`)
  const replies = await Promise.all(names.map(insert))
  t.same(replies.flatMap((r, i) => r.status === 200 ? [] : [i]), [10], 'only the re-inserted deleted policy is refused')
  t.equal(replies[10].status, 409)
  t.match(replies[10].json, { error: 'conflict', message: /deleted .* retired/ })
  t.equal((await master.ok('blockchain get probe bring.count')).text, '19', 'the other 19 are on the ledger')

  // Queries naming fields no policy has: the node keeps at most MAX_ADHOC_INDEXES indexes
  // built for them (least recently used go first), so a stream of made-up names costs no memory.
  const indexesBefore = await metric(master, 'ledgermesh_ledger_indexes', '')
  const query = async (i: number) => await master.ok(`blockchain get probe where made_up_${i} = 1 bring.count`)
  const CONCURRENT = 8
  const BATCH = 4 * MAX_ADHOC_INDEXES
  let next = 0
  const batch = async (): Promise<void> => {
    const end = next + BATCH
    await Promise.all(Array.from({ length: CONCURRENT }, async () => {
      while (next < end) await query(next++)
    }))
  }
  // a first batch lets the heap settle at its working size (Node 24's V8 grows it further
  // before collecting); the second, of as many new names, must not add to it
  await batch()
  t.equal(await metric(master, 'ledgermesh_ledger_indexes', ''), indexesBefore + MAX_ADHOC_INDEXES,
    `${BATCH} made-up fields leave ${MAX_ADHOC_INDEXES} on-demand indexes, the cap`)
  const before = await metric(master, 'process_resident_memory_bytes', '')
  t.ok(before > 0, 'the node reports its resident memory')
  await batch()
  const after = await metric(master, 'process_resident_memory_bytes', '')
  t.equal(await metric(master, 'ledgermesh_ledger_indexes', ''), indexesBefore + MAX_ADHOC_INDEXES, 'as many new names again: still the cap')
  t.ok(after - before < 50 * 2 ** 20, `RSS grew ${((after - before) / 2 ** 20).toFixed(1)} MB over ${BATCH} more queries (limit 50 MB)`)
  t.equal((await master.ok('blockchain get probe where name=burst-3 bring.count')).text, '1', 'queries still answer')
})
