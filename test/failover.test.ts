import t from 'tap'
import { randomBytes } from 'node:crypto'
import { createTestDatabase } from './helpers/pg.js'
import { startPgBouncer } from './helpers/pgbouncer.js'
import { activeMaster, masterRole, startMasters } from './helpers/masters.js'
import { insert } from './helpers/fleet.js'
import { waitFor } from './helpers/net.js'
import { httpJson } from './helpers/http.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { preparePolicy } from '../src/policies/prepare.js'
import { garbledFor } from './helpers/sealed.js'
import { profileContext } from '../src/policies/sealed-settings.js'

// Several masters over one real PostgreSQL database, as real node processes.

// through PgBouncer this runs under `npm run torture` (npm test runs the kill -9 suite through it)
for (const via of ['directly', 'through PgBouncer'] as const) {
t.test(`two masters: the standby forwards; a writer paused past its lease (SIGSTOP) writes nothing when it wakes up, and rejoins as a standby (${via})`, { skip: via !== 'directly' && process.env.TORTURE !== '1' ? 'through PgBouncer under npm run torture' : false }, async t => {
  const db = await createTestDatabase(t)
  const [a, b] = await startMasters(t, via === 'directly' ? db : (await startPgBouncer(t)).through(db), 2)
  t.equal(await activeMaster([a, b]), a, 'the master that began the ledger writes')
  const roleB = await masterRole(b)
  t.equal(roleB.role, 'standby', 'the second stands by')
  t.equal(roleB.active_master, a.ledgerConn, 'naming the active master')
  t.same(roleB.masters.map(m => [m.name, m.trusted]), [['master-a', true], ['master-b', true]], 'both registered and trusted')
  t.equal((await b.ok('blockchain get master bring.count')).text.trim(), '2', 'b declared itself (through a) and follows the ledger')
  const viaB = await insert(b, { note: { name: 'through-the-standby' } })
  t.ok(viaB.seq > 0, 'an insert on the standby is ordered by the active master')
  // so are the admission commands run on the standby: they go to the active master too
  const token = await b.command('create join token where ttl = 10 minutes and uses = 1', { method: 'POST' })
  t.equal(token.status, 200, `create join token on the standby: ${token.text}`)
  t.match(token.text, /lmjt\.[0-9a-f]{16}\./)
  const stranger = randomBytes(32).toString('hex')
  const revoked = await b.command(`revoke node where key = ${stranger}`, { method: 'POST' })
  t.equal(revoked.status, 200, `revoke node on the standby: ${revoked.text}`)
  t.equal((await a.ok(`blockchain get revocation where key = ${stranger} bring.count`)).text.trim(), '1', 'the revocation was ordered by the active master')
  const admitted = await b.command(`admit node where key = ${stranger}`, { method: 'POST' })
  t.equal(admitted.status, 200, `admit node on the standby: ${admitted.text}`)
  t.equal((await b.ok(`blockchain get revocation where key = ${stranger} bring.count`)).text.trim(), '0', 'and lifted through it')

  // a profile whose box is addressed to both masters but holds garbage for b (only b can tell):
  // b asks for a copy (settings_request) and a writes one
  const keyOf = async (node: typeof a) => String((await httpJson(`${node.url}/v1/status`, 5000) as { public_key: string }).public_key)
  const [keyA, keyB] = [await keyOf(a), await keyOf(b)]
  const author = new Ed25519Signer(randomBytes(32))
  t.equal((await a.command(`admit node where key = ${author.publicKey}`, { method: 'POST' })).status, 200)
  const context = profileContext('garbled', author.publicKey)
  const box = garbledFor([keyA, keyB], keyB, { password: 'hunter2' }, context)
  await insert(a, preparePolicy({ profile: { name: 'garbled', kind: 'k', subaccount: 'acme', settings: box as never } }, author))
  const copy = await waitFor('a settings copy for b', async () => {
    const reply = await a.ok(`blockchain get settings_copy where profile = garbled and master_key = ${keyB}`)
    return Array.isArray(reply.json) && reply.json.length === 1 ? reply.json[0] as { settings_copy: { public_key: string } } : undefined
  }, { timeoutMs: 20_000 })
  t.equal(copy.settings_copy.public_key, keyA, 'the active master wrote b a copy of the garbled profile\'s settings')
  t.match(b.logs(), /cannot open a profile's settings addressed to it: asking the active master for a copy/, 'b said why it asked')
  await waitFor('the served request deleted', async () => (await a.ok('blockchain get settings_request bring.count')).text.trim() === '0' ? true : undefined, { timeoutMs: 20_000 })

  const before = Number((await b.ok('blockchain get note bring.count')).text.trim())
  a.proc.kill('SIGSTOP')
  t.teardown(() => { a.proc.kill('SIGCONT') })
  // inserts sent to the paused writer wait in its socket until it wakes up
  const pending = Array.from({ length: 4 }, async (_v, i) => await insert(a, { note: { name: `sent-while-paused-${i}` } }).then(r => ({ ok: true as const, seq: r.seq }), (err: Error) => ({ ok: false as const, err: err.message })))
  t.equal(await activeMaster([b], 15_000), b, 'the other master takes over while the writer sleeps')
  const headB = await b.ok('blockchain get note bring.count')
  a.proc.kill('SIGCONT')
  const answers = await Promise.all(pending)
  await waitFor('a to stand by', async () => (await masterRole(a)).role === 'standby' ? true : undefined, { timeoutMs: 15_000 })
  const role = await masterRole(a)
  t.equal(role.active_master, b.ledgerConn, 'a stands by, naming b')
  // each insert a took after waking was either refused (not_active) or ordered by b: never by a's old epoch
  for (const answer of answers) {
    if (!answer.ok) t.match(answer.err, /not_active|stands by|no longer holds the writer lease/, 'refused as not active')
  }
  const accepted = answers.filter(a => a.ok).length
  const notes = Number((await b.ok('blockchain get note bring.count')).text.trim())
  t.equal(notes, before + accepted, 'exactly the acknowledged inserts are on the ledger')
  t.equal(Number(headB.text.trim()), before, 'nothing was written while a slept')
  const chain = await b.ok('blockchain get master_key bring.count')
  t.equal(chain.text.trim(), '1', 'b\'s key is declared once')
})
}

t.test('MASTER_APPROVAL=manual: a new master waits until an admin approves it', async t => {
  const db = await createTestDatabase(t)
  const [a] = await startMasters(t, db, 1, { MASTER_APPROVAL: 'manual' })
  const [c] = await startMasters(t, db, 1, { MASTER_APPROVAL: 'manual' }, ['master-c'])
  t.equal((await masterRole(c)).role, 'waiting', 'the new master waits for approval')
  const seen = await waitFor('a to see c registered', async () => {
    const masters = (await masterRole(a)).masters
    return masters.length === 2 ? masters.map(m => [m.name, m.trusted]) : undefined
  })
  t.same(seen, [['master-a', true], ['master-c', false]], 'registered in the database, not trusted')
  const key = ((await (await fetch(`${c.url}/v1/status`)).json()) as { public_key: string }).public_key
  const approved = await a.ok(`approve master where key = ${key}`, { method: 'POST' })
  t.match(approved.text, /master-c .*declared/, 'the admin approves it on the active master')
  await waitFor('c to stand by', async () => (await masterRole(c)).role === 'standby' ? true : undefined, { timeoutMs: 15_000 })
  t.equal((await a.ok(`approve master where key = ${key}`, { method: 'POST' })).text.trim().endsWith('was already trusted'), true, 'approving twice changes nothing')
  const unknown = await a.command(`approve master where key = ${'ab'.repeat(32)}`, { method: 'POST' })
  t.equal(unknown.status, 404, 'a key no master registered is refused')
})
