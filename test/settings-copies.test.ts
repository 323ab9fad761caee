import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { silentLogger } from '../src/base/logger.js'
import { Ledger } from '../src/ledger/ledger.js'
import { LevelStore } from '../src/ledger/level-store.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { type Policy, policyBody } from '../src/policies/policy.js'
import { preparePolicy, prepareTombstone } from '../src/policies/prepare.js'
import { type SealedBox, openSealed, sealTo, sealedRecipients } from '../src/policies/seal.js'
import { garbledFor } from './helpers/sealed.js'
import { profileContext } from '../src/policies/sealed-settings.js'
import { prepareSealed } from '../src/policies/sign-input.js'
import { openSettingsFor, resealForMasters, settingsCopies, settingsRequests, touchesSettingsCopies } from '../src/services/settings-copies.js'
import { KIND, WORKER, eventually, leaseFleet } from './helpers/lease-fleet.js'
import { author } from './helpers/libp2p.js'
import { ROOT } from './helpers/node-process.js'
import { tmpDir } from './helpers/tmp.js'
import { ledgerAt } from './helpers/ledgers.js'

// Profiles sealed before a master key was trusted: the active master writes a settings_copy
// per such profile, re-sealed to the new key (src/services/settings-copies.ts), so the new
// master places them after a failover; only a trusted master key may write a copy.

const log = silentLogger()
const key = () => new Ed25519Signer(randomBytes(32))
const secretOf = (name: string) => `hunter2-${name}-${randomBytes(6).toString('hex')}`
const profileOf = (name: string, settings: Record<string, string>, masterKeys: string[]) =>
  prepareSealed({ profile: { name, kind: KIND, subaccount: 'acme', settings } }, author, { masterKeys })


t.test('the active master re-seals older profiles to a new master key; that master opens them after a failover', async t => {
  const dir = await tmpDir(t)
  const path = join(dir, 'shared')
  const [a, b] = [key(), key()]
  const first = new Ledger({ store: new LevelStore({ path }), log, masterSigner: a })
  await first.open()
  const put = async (policy: Policy, signer?: Ed25519Signer) => (await first.submit({ op: 'put', policy: signer === undefined ? policy : preparePolicy(policy, signer) })).policy
  const secrets = { old: secretOf('old'), both: secretOf('both') }
  const old = await put(profileOf('old', { password: secrets.old }, [a.publicKey]))
  const both = await put(profileOf('both', { password: secrets.both }, [a.publicKey, b.publicKey]))
  await put({ profile: { name: 'plain', kind: KIND, subaccount: 'acme', settings: { password: 'legacy' } } }, author)
  await put({ profile: { name: 'none', kind: KIND, subaccount: 'acme' } }, author)
  t.same(await resealForMasters({ ledger: first, signer: a, log }), { written: [], deleted: [] }, 'one master: nothing to copy')

  const declared = await first.submit({ op: 'put', policy: preparePolicy({ master_key: { name: 'master-b', key: b.publicKey } }, a) })
  t.ok(touchesSettingsCopies([declared]), 'a new master key calls for a run')

  t.throws(() => openSettingsFor(first, old, b), { code: 'bad_policy', message: /not to this node's key .*no trusted master wrote a copy/ }, 'before the copy, b cannot open the older profile')
  const result = await resealForMasters({ ledger: first, signer: a, log })
  t.match(result, { written: [{ profile: 'old', profile_id: policyBody(old).id, master_key: b.publicKey }], deleted: [] }, 'one copy: the profile not addressed to b (not the one sealed to both, nor plain or empty ones)')
  t.equal(result.written.length, 1)
  const [copy] = settingsCopies(first, old)
  const body = policyBody(copy)
  t.equal(body.public_key, a.publicKey, 'the copy is signed by the active master')
  t.same(sealedRecipients(body.settings), [b.publicKey], 'its box is sealed to b only')
  t.notMatch(JSON.stringify(copy), secrets.old, 'the copy holds no plain settings')
  t.same(openSealed(body.settings, b, profileContext('old', author.publicKey)), { password: secrets.old }, 'for the profile\'s own context')
  t.same(await resealForMasters({ ledger: first, signer: a, log }), { written: [], deleted: [] }, 'a second run writes nothing')
  await first.close()

  // failover: b takes over the same store
  const second = await ledgerAt(t, path, b)
  t.same(openSettingsFor(second, old, b), { password: secrets.old }, 'b opens the older profile from its copy')
  t.same(openSettingsFor(second, both, b), { password: secrets.both }, 'and the newer one from its own box')
  t.throws(() => openSettingsFor(second, both, key()), { message: /sealed to keys/ }, 'a key that is neither opens nothing')

  // the profile goes: its copy, which now serves nothing, goes too
  await second.submit({ op: 'delete', policy: prepareTombstone(String(policyBody(old).id), author) })
  t.same(await resealForMasters({ ledger: second, signer: b, log }), { written: [], deleted: [String(body.id)] }, 'the orphan copy is deleted')
  t.equal([...second.state.policiesOfType('settings_copy')].length, 0)
  await t.rejects(resealForMasters({ ledger: second, signer: key(), log }), { code: 'unauthorized', message: /not a master key the ledger trusts/ }, 'a key that is not a master\'s writes no copy')
})

t.test('only a trusted master key may write a settings copy', async t => {
  const dir = await tmpDir(t)
  const [a, b, stranger, admin] = [key(), key(), key(), key()]
  const ledger = await ledgerAt(t, join(dir, 'a'), a)
  const profile = (await ledger.submit({ op: 'put', policy: profileOf('p1', { password: secretOf('p1') }, [a.publicKey]) })).policy
  await ledger.submit({ op: 'put', policy: preparePolicy({ master_key: { name: 'master-b', key: b.publicKey } }, a) })
  await ledger.submit({ op: 'put', policy: preparePolicy({ admin: { name: 'ops', key: admin.publicKey } }, a) })
  const copyBy = (signer: Ed25519Signer, box: SealedBox = sealTo(b.publicKey, { password: 'x' }, profileContext('p1', author.publicKey))) =>
    preparePolicy({ settings_copy: { profile: 'p1', profile_id: String(policyBody(profile).id), master_key: b.publicKey, settings: box as never } }, signer)
  await t.rejects(ledger.submit({ op: 'put', policy: copyBy(stranger) }), { code: 'unauthorized', message: /may not write settings_copy policies: only a trusted master key may/ }, 'a stranger\'s copy is refused')
  await t.rejects(ledger.submit({ op: 'put', policy: copyBy(admin) }), { code: 'unauthorized', message: /only a trusted master key may/ }, 'so is an admin\'s: an admin does not read settings')
  await t.rejects(ledger.submit({ op: 'put', policy: copyBy(a, sealTo(stranger.publicKey, { password: 'x' }, profileContext('p1', author.publicKey))) }), { code: 'bad_policy', message: /sealed to its master_key/ }, 'a copy whose box is for another key than it names')
  const byB = await ledger.submit({ op: 'put', policy: copyBy(b) })
  t.equal(settingsCopies(ledger, profile).length, 1, 'another trusted master may write one')
  t.notOk(touchesSettingsCopies([byB]), 'a copy\'s put calls for no run')

  // two copies for the same key (overlapping runs): a run keeps one
  const byA = await ledger.submit({ op: 'put', policy: copyBy(a) })
  t.same(await resealForMasters({ ledger, signer: a, log }), { written: [], deleted: [String(policyBody(byA.policy).id)] }, 'the second copy is deleted')
  t.same(settingsCopies(ledger, profile).map(p => policyBody(p).public_key), [b.publicKey])
  const deleted = await ledger.submit({ op: 'delete', policy: prepareTombstone(String(policyBody(profile).id), author) })
  t.ok(touchesSettingsCopies([deleted]), 'a delete calls for a run')
})

const RUNNER = `${process.execPath} ${join(ROOT, 'test', 'fixtures', 'settings-runner.mjs')}`

t.test('an allocator running with master b places profiles sealed to a and b, and those sealed to a once a copies them', async t => {
  const out = await tmpDir(t, 'lm-copies-')
  const fleet = await leaseFleet(t, { ttlMs: 60_000, graceMs: 30_000, runner: RUNNER })
  const b = fleet.master.signer // the allocator's key
  const a = key()
  const { ledger } = fleet.master
  await ledger.submit({ op: 'put', policy: preparePolicy({ master_key: { name: 'master-a', key: a.publicKey } }, b) })
  const settings = { both: { password: secretOf('both'), out_dir: out }, onlyA: { password: secretOf('only-a'), out_dir: out } }
  await ledger.submit({ op: 'put', policy: profileOf('both', settings.both, [a.publicKey, b.publicKey]) })
  // written straight to the ledger, past b's insert check (a was active when it was written)
  await ledger.submit({ op: 'put', policy: profileOf('only-a', settings.onlyA, [a.publicKey]) })

  const ran = (name: string) => () => existsSync(join(out, `${WORKER}-${name}.json`))
  const received = (name: string) => JSON.parse(readFileSync(join(out, `${WORKER}-${name}.json`), 'utf8')) as unknown
  t.ok(await eventually(ran('both')), 'the profile sealed to both masters runs')
  t.same(received('both'), settings.both, 'with its settings')
  t.ok(await eventually(() => fleet.allocator.summary().unplaced.some(u => u.name === 'only-a')), 'the profile sealed to a only is not placed by b')
  t.match(fleet.allocator.summary().unplaced.find(u => u.name === 'only-a')?.reason, /no trusted master wrote a copy of them for this key/, 'and b says why')

  const result = await resealForMasters({ ledger, signer: a, log })
  t.match(result.written, [{ profile: 'only-a', master_key: b.publicKey }], 'a copies the older profile to b')
  t.equal(result.written.length, 1)
  t.ok(await eventually(ran('only-a')), 'b places it from the copy')
  t.same(received('only-a'), settings.onlyA, 'with exactly the settings its author sealed')
  t.notOk(fleet.allocator.summary().unplaced.some(u => u.name === 'only-a'), 'it is no longer listed as unplaced')
})

t.test('a box addressed to a master but holding garbage for it: that master asks for a copy, the active master writes it', async t => {
  const dir = await tmpDir(t)
  const [a, b, admin] = [key(), key(), key()]
  const ledger = await ledgerAt(t, join(dir, 'a'), a)
  await ledger.submit({ op: 'put', policy: preparePolicy({ master_key: { name: 'master-b', key: b.publicKey } }, a) })
  await ledger.submit({ op: 'put', policy: preparePolicy({ admin: { name: 'ops', key: admin.publicKey } }, a) })
  // a box to a and b whose wrapped key for b opens another box's content key: only b can tell
  const secret = secretOf('p1')
  const context = profileContext('p1', author.publicKey)
  const box = garbledFor([a.publicKey, b.publicKey], b.publicKey, { password: secret }, context)
  const profile = (await ledger.submit({ op: 'put', policy: preparePolicy({ profile: { name: 'p1', kind: KIND, subaccount: 'acme', settings: box as never } }, author) })).policy

  t.same(openSettingsFor(ledger, profile, a), { password: secret }, 'the active master opens it')
  t.throws(() => openSettingsFor(ledger, profile, b), { code: 'bad_policy' }, 'b cannot, though the box is addressed to it')
  t.same(await resealForMasters({ ledger, signer: a, log }), { written: [], deleted: [] }, 'the active master cannot tell: b is among the box\'s recipients')

  const requests = settingsRequests(ledger, [profile], b)
  t.equal(requests.length, 1, 'b asks for a copy')
  t.match(policyBody(requests[0].policy), { profile: 'p1', profile_id: policyBody(profile).id, master_key: b.publicKey, public_key: b.publicKey })
  t.same(settingsRequests(ledger, [profile], a), [], 'a, whose part opens, asks nothing')
  const asked = await ledger.submit(requests[0])
  t.ok(touchesSettingsCopies([asked]), 'a request calls for a copies run')
  t.same(settingsRequests(ledger, [profile], b), [], 'b does not ask twice while its request is live')

  const result = await resealForMasters({ ledger, signer: a, log })
  t.match(result, { written: [{ profile: 'p1', master_key: b.publicKey }], deleted: [String(policyBody(asked.policy).id)] }, 'a writes b a copy and deletes the request it served')
  t.same(openSettingsFor(ledger, profile, b), { password: secret }, 'b now opens the settings from its copy')
  t.same(settingsRequests(ledger, [profile], b), [], 'and asks nothing more')
  t.same(await resealForMasters({ ledger, signer: a, log }), { written: [], deleted: [] }, 'a second run writes nothing')

  const requestBy = (signer: Ed25519Signer) => preparePolicy({ settings_request: { profile: 'p1', profile_id: String(policyBody(profile).id), master_key: b.publicKey } }, signer)
  await t.rejects(ledger.submit({ op: 'put', policy: requestBy(a) }), { code: 'unauthorized', message: /a master asks for its own key only/ }, 'a master may not ask on another\'s behalf')
  await t.rejects(ledger.submit({ op: 'put', policy: requestBy(admin) }), { code: 'unauthorized', message: /only a trusted master key may/ }, 'nor may an admin')
})
