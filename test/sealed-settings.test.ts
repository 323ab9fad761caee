import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { loadOrCreateIdentity } from '../src/node/identity.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { preparePolicy } from '../src/policies/prepare.js'
import { type SealedBox, openSealed } from '../src/policies/seal.js'
import { assignmentContext } from '../src/policies/sealed-settings.js'
import { LEASE, getJson, insert, startSlave, startWorker, waitRunning } from './helpers/fleet.js'
import { waitFor } from './helpers/net.js'
import { type NodeProcess, ROOT, startNode } from './helpers/node-process.js'
import { createTestDatabase, pgQuery } from './helpers/pg.js'
import { tmpDir } from './helpers/tmp.js'

// Issue 13: a profile's secrets reach only the worker that runs it. Real processes: a master on
// PostgreSQL, a slave and two workers. A profile inserted through the slave's JSON API, and one
// through a script on the master (`blockchain prepare policy`, then `blockchain insert`), reach
// their workers' runners exactly, and their passwords are in no query answer on any node, no log
// line and no PostgreSQL row; when a profile moves, its settings are sealed anew to the new
// worker, and the old worker's key cannot open the new box.

const RUNNER = `${process.execPath} ${join(ROOT, 'test', 'fixtures', 'settings-runner.mjs')}`
const PROFILE = 'vault-1'
const SCRIPTED = 'vault-2'

/** What the runner of `profile` on `worker` got as PROFILE_SETTINGS (it writes it to a file). */
async function received (dir: string, worker: NodeProcess, profile = PROFILE): Promise<unknown> {
  const file = join(dir, `${worker.name}-${profile}.json`)
  await waitFor(`${worker.name}'s runner to write ${file}`, () => existsSync(file) ? true : undefined, { timeoutMs: 15_000 })
  return JSON.parse(readFileSync(file, 'utf8'))
}

/** Every place a node answers with policies or profiles, as text. */
async function answers (node: NodeProcess): Promise<Record<string, string>> {
  return {
    'blockchain get profile': (await node.ok('blockchain get profile')).text,
    'blockchain get assignment': (await node.ok('blockchain get assignment')).text,
    'blockchain get *': (await node.ok('blockchain get *')).text,
    'GET /v1/policies': JSON.stringify(await getJson(node, '/v1/policies')),
    'GET /v1/profiles': JSON.stringify(await getJson(node, '/v1/profiles')),
    'get profiles': (await node.ok('get profiles')).text,
    'get processes': (await node.ok('get processes')).text
  }
}

t.test('a profile\'s settings reach its worker\'s runner and nothing else, and are sealed anew when it moves', async t => {
  const out = await tmpDir(t, 'lm-sealed-e2e-')
  const db = await createTestDatabase(t)
  const master = await startNode(t, {
    type: 'master',
    name: 'master-1',
    env: { LEASE_TTL: `${LEASE.ttlMs} ms`, LEASE_GRACE: `${LEASE.graceMs} ms`, DB_TYPE: 'psql', DB_IP: db.host, DB_PORT: db.port, DB_USER: db.user, DB_NAME: db.database }
  })
  const slave = await startSlave(t, master, 'slave-a', 2)
  const workers = [
    await startWorker(t, master, { name: 'w1', slave: 'slave-a', slots: 2, kinds: ['vault'], runner: RUNNER }),
    await startWorker(t, master, { name: 'w2', slave: 'slave-a', slots: 2, kinds: ['vault'], runner: RUNNER })
  ]
  const nodes = [master, slave, ...workers]
  const masterKey = (await loadOrCreateIdentity(master.home)).signer.publicKey

  const password = `hunter2-${randomBytes(8).toString('hex')}`
  const cookie = `li_at-${randomBytes(8).toString('hex')}`
  const settings = { password, session: { cookie }, heartbeat_ms: 150, out_dir: out }
  const scriptedSettings = { password: `hunter2-${randomBytes(8).toString('hex')}`, out_dir: out }
  const secrets = [password, cookie, scriptedSettings.password]
  const which = (secret: string) => ['the password', 'the cookie', 'the scripted profile\'s password'][secrets.indexOf(secret)]

  await insert(master, { subaccount: { name: 'acme', account: 'acme-inc' } })
  // through a replica: the slave seals the settings to the master's key, then signs
  await waitFor('the slave to know the master', async () => (await getJson(slave, '/v1/policies?type=master')).policies.length > 0 ? true : undefined)
  await insert(slave, { profile: { name: PROFILE, kind: 'vault', subaccount: 'acme', settings } })

  const first = await waitFor(`a worker to run ${PROFILE}`, async () => {
    for (const w of workers) if ((await getJson(w, '/v1/profiles')).profiles.some((p: { name: string, state: string }) => p.name === PROFILE && p.state === 'RUNNING')) return w
    return undefined
  }, { timeoutMs: 30_000 })
  const second = workers.find(w => w !== first)!
  t.same(await received(out, first), settings, `${first.name}'s runner got exactly the settings`)

  t.test('the master\'s own script seals too: blockchain prepare policy, then blockchain insert', async t => {
    const policy = `<p = ${JSON.stringify({ profile: { name: SCRIPTED, kind: 'vault', subaccount: 'acme', settings: scriptedSettings } })}>`
    const prepared = await master.ok('blockchain prepare policy !p', { method: 'POST', body: policy })
    t.match(prepared.text, /"sealed"/, 'prepare shows the sealed box')
    t.notOk(prepared.text.includes(scriptedSettings.password), 'and not the password')
    const script = join(out, 'profiles.al')
    writeFileSync(script, `${policy}\nblockchain prepare policy !p\nblockchain insert where policy = !p\n`)
    await master.ok(`process ${JSON.stringify(script)}`)
    const runner = await waitFor(`a worker to run ${SCRIPTED}`, async () => {
      for (const w of workers) if ((await getJson(w, '/v1/profiles')).profiles.some((p: { name: string, state: string }) => p.name === SCRIPTED && p.state === 'RUNNING')) return w
      return undefined
    }, { timeoutMs: 30_000 })
    t.same(await received(out, runner, SCRIPTED), scriptedSettings, `${runner.name}'s runner got exactly its settings`)
  })

  t.test('on the ledger the settings are sealed: to the master in the profile, to the worker in its assignment', async t => {
    const [profile] = (await getJson(master, `/v1/policies?type=profile&name=${PROFILE}`)).policies
    t.equal(profile.profile.settings.sealed.to, masterKey, 'the profile\'s box is sealed to the master\'s key')
    const [assignment] = (await getJson(master, `/v1/policies?type=assignment&profile=${PROFILE}`)).policies
    t.equal(assignment.assignment.settings.sealed.to, (await loadOrCreateIdentity(first.home)).signer.publicKey, 'the assignment\'s box is sealed to the worker\'s key')
  })

  t.test('a client-signed profile with plain settings is refused by the master, through a replica too', async t => {
    const client = new Ed25519Signer(randomBytes(32))
    const plain = preparePolicy({ profile: { name: 'plain-1', kind: 'vault', subaccount: 'acme', settings: { password } } }, client)
    const reply = await fetch(`${slave.url}/v1/policies`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(plain) })
    const body = await reply.json() as { error: string, message: string }
    t.equal(reply.status, 400)
    t.equal(body.error, 'bad_policy')
    t.match(body.message, /profile 'plain-1': its settings are plain text, and plain settings never go on the ledger/)
    t.notMatch(body.message, password, 'the refusal does not quote the settings')
  })

  t.test('drained, the worker\'s profile moves, its settings sealed to the new worker only', async t => {
    await first.ok('worker drain')
    await waitRunning(second, [PROFILE, SCRIPTED], 40_000)
    await waitRunning(first, [])
    t.same(await received(out, second), settings, `${second.name}'s runner got exactly the settings`)

    const assignments = (await getJson(master, `/v1/policies?type=assignment&profile=${PROFILE}`)).policies.map((p: { assignment: Record<string, unknown> }) => p.assignment)
    t.equal(assignments.length, 1, 'one assignment of the profile')
    const assignment = assignments[0]
    t.equal(assignment.worker, second.name)
    const box = assignment.settings as SealedBox
    const context = assignmentContext(PROFILE, String(assignment.profile_id), second.name)
    const firstKey = await loadOrCreateIdentity(first.home)
    const secondKey = await loadOrCreateIdentity(second.home)
    t.equal(firstKey.created, false, `${first.name}'s identity key read from its home`)
    t.equal(box.sealed.to, secondKey.signer.publicKey, `the new box is sealed to ${second.name}`)
    t.throws(() => openSealed(box, firstKey.signer, context), { name: 'LedgerMeshError', code: 'bad_policy', details: { reason: 'wrong_recipient' } }, `${first.name}'s key cannot open it`)
    t.throws(() => openSealed({ sealed: { ...box.sealed, to: firstKey.signer.publicKey } }, firstKey.signer, context), { code: 'bad_policy', details: { reason: 'not_opened' } }, `nor by pretending it was sealed to ${first.name}`)
    t.same(openSealed(box, secondKey.signer, context), settings, `${second.name}'s key opens it to the settings`)
  })

  t.test('the settings are in no answer, log line or PostgreSQL row of any node', async t => {
    for (const node of nodes) {
      for (const [where, text] of Object.entries(await answers(node))) {
        for (const secret of secrets) t.notOk(text.includes(secret), `${node.name}: ${where} does not show ${which(secret)}`)
      }
      t.match((await node.ok('blockchain get profile')).text, /"sealed"/, `${node.name}: blockchain get profile shows the sealed box`)
    }
    for (const node of nodes) {
      const logs = node.logs()
      for (const secret of secrets) t.notOk(logs.includes(secret), `${node.name}: no log line holds ${which(secret)}`)
    }
    for (const w of workers) t.match(w.logs(), `settings-runner: profile ${PROFILE} started on ${w.name}`, `${w.name}'s log holds its runner's output (the log is the one searched)`)

    const rows = await pgQuery<{ row: string }>(db, 'SELECT row_to_json(l)::text AS row FROM ledger l')
    t.ok(rows.some(r => r.row.includes(PROFILE) && r.row.includes('"sealed"')), 'the PostgreSQL ledger holds the profile, sealed')
    for (const secret of secrets) t.notOk(rows.some(r => r.row.includes(secret)), `no PostgreSQL ledger row holds ${which(secret)}`)
    const policyTexts = await pgQuery<{ policy_text: string }>(db, 'SELECT policy_text FROM ledger')
    t.ok(policyTexts.length > 0 && secrets.every(secret => !policyTexts.some(r => r.policy_text.includes(secret))), 'no policy_text holds a secret')
  })
})
