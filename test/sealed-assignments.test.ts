import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import t from 'tap'
import { Ed25519Signer } from '../src/policies/keys.js'
import { type Policy, policyBody } from '../src/policies/policy.js'
import { preparePolicy } from '../src/policies/prepare.js'
import { type SealedBox, openSealed, sealTo } from '../src/policies/seal.js'
import { assignmentContext, profileContext } from '../src/policies/sealed-settings.js'
import { prepareSealed } from '../src/policies/sign-input.js'
import { LeaseProtocol } from '../src/protocols/lease/index.js'
import { Operator } from '../src/services/operator/index.js'
import { KIND, SLAVE, WORKER, eventually, leaseFleet, runsExactly } from './helpers/lease-fleet.js'
import { author, ledgerPeer, mastersOf } from './helpers/libp2p.js'
import { ROOT } from './helpers/node-process.js'
import { tmpDir } from './helpers/tmp.js'

// Sealed profile settings between the master's Allocator and a worker's Operator, in this
// process over real libp2p: the allocator re-seals each profile's settings to the worker it
// assigns the profile to, and refuses to place a profile whose settings it cannot open; the
// worker starts a profile only with settings it can open, and hands them to its runner only.

const RUNNER = `${process.execPath} ${join(ROOT, 'test', 'fixtures', 'settings-runner.mjs')}`

function capture (): { log: pino.Logger, lines: string[] } {
  const lines: string[] = []
  const log = pino({ level: 'info' }, new Writable({ write (chunk, _encoding, done) { lines.push(String(chunk)); done() } }))
  return { log, lines }
}

/** What the runner of `profile` on `worker` was given as PROFILE_SETTINGS, once it has written it. */
async function received (dir: string, worker: string, profile: string): Promise<unknown> {
  const file = join(dir, `${worker}-${profile}.json`)
  if (!await eventually(() => existsSync(file))) throw new Error(`the runner of ${profile} on ${worker} wrote no ${file}`)
  return JSON.parse(readFileSync(file, 'utf8'))
}

const secretOf = (name: string) => `hunter2-${name}-${randomBytes(6).toString('hex')}`

t.test('the allocator seals each profile\'s settings to its worker; profiles it cannot open stay unplaced, saying why', async t => {
  const out = await tmpDir(t, 'lm-sealed-')
  const { log, lines } = capture()
  const fleet = await leaseFleet(t, { ttlMs: 60_000, graceMs: 30_000, runner: RUNNER, log })
  const masterKey = fleet.master.signer.publicKey
  const settings = { password: secretOf('good'), out_dir: out }
  const submit = async (policy: Policy) => await fleet.master.ledger.submit({ op: 'put', policy })
  // as a node inserts it: sealed to the master, bound to the profile's name and author
  await submit(prepareSealed({ profile: { name: 'good', kind: KIND, subaccount: 'acme', settings } }, author, { masterKeys: [masterKey] }))
  // written straight to the ledger, past the master's insert check: what the allocator must not place
  const legacy = secretOf('legacy')
  await submit(preparePolicy({ profile: { name: 'legacy', kind: KIND, subaccount: 'acme', settings: { password: legacy, out_dir: out } } }, author))
  await submit(preparePolicy({ profile: { name: 'elsewhere', kind: KIND, subaccount: 'acme', settings: sealTo(author.publicKey, { out_dir: out }, profileContext('elsewhere', author.publicKey)) as never } }, author))
  await submit(preparePolicy({ profile: { name: 'copied', kind: KIND, subaccount: 'acme', settings: sealTo(masterKey, { out_dir: out }, profileContext('good', author.publicKey)) as never } }, author))
  await submit(preparePolicy({ profile: { name: 'empty', kind: KIND, subaccount: 'acme' } }, author))

  t.ok(await eventually(() => runsExactly(fleet, ['good', 'empty'])), 'the profiles with openable (or no) settings run', { rows: fleet.operator.profiles() })
  t.same(await received(out, WORKER, 'good'), settings, 'the runner got exactly the settings the author sealed')

  const assignments = [...fleet.master.ledger.state.policiesOfType('assignment')].map(p => policyBody(p)).filter(b => typeof b.profile === 'string')
  t.same(assignments.map(b => b.profile).sort(), ['empty', 'good'], 'only those two are assigned')
  const good = assignments.find(b => b.profile === 'good')!
  const box = good.settings as unknown as SealedBox
  t.equal(box.sealed.to, fleet.worker.signer.publicKey, 'the assignment\'s box is sealed to the worker\'s key')
  t.same(openSealed(box, fleet.worker.signer, assignmentContext('good', String(good.profile_id), WORKER)), settings, 'the worker\'s key opens it')
  t.throws(() => openSealed(box, fleet.master.signer, assignmentContext('good', String(good.profile_id), WORKER)), { code: 'bad_policy', details: { reason: 'wrong_recipient' } }, 'the master\'s key does not')
  t.equal(assignments.find(b => b.profile === 'empty')!.settings, undefined, 'a profile without settings gets no box')

  const unplaced = new Map(fleet.allocator.summary().unplaced.map(u => [u.name, u.reason]))
  t.match(unplaced.get('legacy'), /settings are plain text on the ledger/, 'plain settings: not placed, and why')
  t.match(unplaced.get('elsewhere'), /sealed to key [0-9a-f]{12}…, not to this node's key/, 'a box for another key: not placed, and why')
  t.match(unplaced.get('copied'), /do not open with the master's key/, 'a box copied from another profile: not placed, and why')
  t.match(fleet.allocator.status().details, /Unassigned: 0 sub-accounts, 3 profiles/)
  t.equal(lines.filter(l => l.includes('profile not placed: its settings cannot be opened')).length, 3, 'each refused profile is logged once')

  const all = lines.join('\n') + JSON.stringify([...fleet.master.ledger.state.policiesOfType('assignment')])
  t.notMatch(all, settings.password, 'no log line and no assignment holds the sealed password')
  t.notMatch(lines.join('\n'), legacy, 'the plain profile\'s password is in no log line either')
})

t.test('a worker does not start a profile whose box it cannot open, and says why', async t => {
  const out = await tmpDir(t, 'lm-sealed-')
  const { log, lines } = capture()
  const master = await ledgerPeer(t, { master: true })
  const worker = await ledgerPeer(t)
  // no allocator: the assignments below are written by hand, as the master's key would
  const lease = new LeaseProtocol({ libp2p: master.libp2p, log: master.log })
  await lease.serve(async () => ({ ttlMs: 60_000, graceMs: 30_000, minSeq: 0 }))
  t.teardown(async () => { await lease.stop() })
  const put = async (policy: Policy, signer = master.signer) => await master.ledger.submit({ op: 'put', policy: preparePolicy(policy, signer) })
  await put({ slave: { name: SLAVE, ip: '127.0.0.1', rest_port: 9 } })

  const otherWorker = new Ed25519Signer(randomBytes(32))
  const secrets: string[] = []
  const profiles = new Map<string, string>()
  for (const name of ['good', 'other-worker', 'tampered', 'moved', 'unsealed']) {
    const secret = secretOf(name)
    secrets.push(secret)
    const entry = await master.ledger.submit({ op: 'put', policy: prepareSealed({ profile: { name, kind: KIND, subaccount: 'acme', settings: { password: secret, out_dir: join(out, name) } } }, author, { masterKeys: [master.signer.publicKey] }) })
    profiles.set(name, entry.policy.profile.id as string)
  }
  const settingsOf = (name: string) => ({ password: secrets[[...profiles.keys()].indexOf(name)], out_dir: join(out, name) })
  const assign = async (name: string, settings: SealedBox | undefined) => {
    await put({ assignment: { profile: name, profile_id: profiles.get(name)!, kind: KIND, subaccount: 'acme', slave: SLAVE, worker: WORKER, epoch: 1, ...(settings === undefined ? {} : { settings: settings as never }) } })
  }
  const context = (name: string) => assignmentContext(name, profiles.get(name)!, WORKER)
  const goodBox = sealTo(worker.signer.publicKey, settingsOf('good'), context('good'))
  await assign('good', goodBox)
  await assign('other-worker', sealTo(otherWorker.publicKey, settingsOf('other-worker'), context('other-worker')))
  const tampered = sealTo(worker.signer.publicKey, settingsOf('tampered'), context('tampered'))
  const ct = Buffer.from(tampered.sealed.ct, 'base64')
  ct[ct.length - 1] ^= 0x80
  await assign('tampered', { sealed: { ...tampered.sealed, ct: ct.toString('base64') } })
  await assign('moved', goodBox)
  await assign('unsealed', undefined)
  for (const name of profiles.keys()) mkdirSync(join(out, name))

  const operator = new Operator({ ledger: master.ledger, lease: new LeaseProtocol({ libp2p: worker.libp2p, log }), masters: mastersOf([master]), workerName: WORKER, signer: worker.signer, runners: { [KIND]: RUNNER }, stopGraceMs: 500, log })
  await operator.start()
  t.teardown(async () => { await operator.stop() })

  const settled = () => {
    const rows = operator.profiles()
    return rows.length === 5 && rows.find(r => r.name === 'good')?.state === 'RUNNING'
  }
  t.ok(await eventually(settled), 'the good profile runs, the four others are listed', { rows: operator.profiles() })
  t.same(await received(join(out, 'good'), WORKER, 'good'), settingsOf('good'), 'the good profile\'s runner got its settings')
  const rows = new Map(operator.profiles().map(r => [r.name, r]))
  const expected: Record<string, RegExp> = {
    'other-worker': /not started: its settings do not open with this worker's key: the box is sealed to key [0-9a-f]{12}…, not to this node's key/,
    tampered: /not started: .*tampered with, or sealed for another context/,
    moved: /not started: .*sealed for another context than "assignment\|profile:moved/,
    unsealed: /not started: the profile has settings, but its assignment carries none sealed to this worker/
  }
  for (const [name, problem] of Object.entries(expected)) {
    t.match(rows.get(name), { state: 'ERROR', pid: null, problem }, `${name}: not started, and why`)
    t.same(readdirSync(join(out, name)), [], `${name}: no runner ever started`)
    t.equal(lines.filter(l => l.includes('"level":40') && l.includes(`"profile":"${name}"`) && l.includes('not started')).length, 1, `${name}: one warning in the log`)
  }
  t.equal(rows.get('good')!.problem, null)
  t.match(operator.status().details, /4 not started: settings do not open/, 'get processes says so too')
  t.same(operator.countByState().ERROR, 4)
  const shown = lines.join('\n') + JSON.stringify(operator.profiles()) + JSON.stringify(operator.status())
  for (const secret of secrets) t.notMatch(shown, secret, 'no log line and no status shows a password')
})
