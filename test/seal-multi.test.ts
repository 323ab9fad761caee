import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import t from 'tap'
import { LedgerMeshError } from '../src/base/errors.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { type JsonValue, policyBody } from '../src/policies/policy.js'
import { preparePolicy } from '../src/policies/prepare.js'
import { type MultiSealedBox, type SealedBox, openSealed, sealTo, sealToAll, sealedRecipients } from '../src/policies/seal.js'
import { checkSealedForMaster, openProfileSettings, profileContext } from '../src/policies/sealed-settings.js'
import { signUnlessSigned } from '../src/policies/sign-input.js'
import { validatePolicy } from '../src/policies/validate.js'
import { refuses as refusesWith } from './helpers/refuses.js'

// Boxes to several keys (seal.ts, version 2): every listed master opens the same box with its
// own key, for the same context; nobody else does; a box to one key stays version 1.

const key = () => new Ed25519Signer(randomBytes(32))
const [a, b, c, stranger] = [key(), key(), key(), key()]
const secret = `hunter2-${randomBytes(6).toString('hex')}`
const settings = { password: secret, cookies: [{ name: 'li_at', value: randomBytes(8).toString('hex') }], tags: ['é', '✓'] }
const CONTEXT = 'profile:p1|author:test'

const refuses = (tt: typeof t, fn: () => unknown, reason: string, message: RegExp, what: string): void => { refusesWith(tt, fn, { reason, message, secret }, what) }

const multi = (box: SealedBox | MultiSealedBox) => box as MultiSealedBox

t.test('a box to several keys opens with each of them, and with no other', async t => {
  const box = multi(sealToAll([a.publicKey, b.publicKey, c.publicKey], settings, CONTEXT))
  t.match(box.sealed, { v: 2, alg: 'x25519-hkdf-sha256-xchacha20poly1305', nonce: /^[0-9a-f]{48}$/, ct: /^[A-Za-z0-9+/]+=*$/ })
  t.same(box.sealed.keys.map(k => k.to), [a.publicKey, b.publicKey, c.publicKey], 'one wrapped key per recipient, in order')
  t.same(sealedRecipients(box), [a.publicKey, b.publicKey, c.publicKey])
  t.equal(new Set(box.sealed.keys.map(k => k.epk)).size, 3, 'a fresh ephemeral key per recipient')
  t.equal(new Set([box.sealed.nonce, ...box.sealed.keys.map(k => k.nonce)]).size, 4, 'a fresh nonce per wrap and for the content')
  t.notMatch(JSON.stringify(box), secret, 'the box does not hold the plaintext')
  for (const k of [a, b, c]) t.same(openSealed(JSON.parse(JSON.stringify(box)), k, CONTEXT), settings, 'a listed key opens it')
  refuses(t, () => openSealed(box, stranger, CONTEXT), 'wrong_recipient', /sealed to keys [0-9a-f]{12}…, [0-9a-f]{12}…, [0-9a-f]{12}…, not to this node's key/, 'an unlisted key')
  refuses(t, () => openSealed(box, b, 'profile:p2|author:test'), 'not_opened', /sealed for another context than "profile:p2/, 'another context')

  const again = multi(sealToAll([a.publicKey, b.publicKey], settings, CONTEXT))
  t.not(again.sealed.ct, box.sealed.ct, 'two boxes of the same settings differ')
  t.equal(multi(sealToAll([a.publicKey, a.publicKey, b.publicKey], settings, CONTEXT)).sealed.keys.length, 2, 'a repeated key counts once')
})

t.test('a box to one key is version 1, as older nodes wrote and still open', async t => {
  const one = sealToAll([a.publicKey, a.publicKey], settings, CONTEXT) as SealedBox
  t.same(Object.keys(one.sealed), ['v', 'alg', 'to', 'epk', 'nonce', 'ct'], 'the version 1 fields, in their order')
  t.equal(one.sealed.v, 1)
  t.same(openSealed(one, a, CONTEXT), settings)
  t.same(sealedRecipients(sealTo(b.publicKey, settings, CONTEXT)), [b.publicKey])
  // a box as the code before version 2 sealed it (this exact text), opened by today's code
  const oldKey = new Ed25519Signer(Buffer.alloc(32, 7))
  const old = { sealed: { v: 1, alg: 'x25519-hkdf-sha256-xchacha20poly1305', to: 'ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c', epk: '19274bee0874a2a84143c07aa79f8bc8bcf09fc9d22d28c945acb4b642d0d32a', nonce: 'ff142b23b2beff206e4b08e8d85002be78ce71c91297a327', ct: 'V2EhtUKQLnz4l53lCUs2gxqu/GDX4jH1qBlQwKHMzMcGTc4+Pw5vM0nCaA4=' } }
  t.equal(oldKey.publicKey, old.sealed.to)
  t.same(openSealed(old, oldKey, CONTEXT), { password: 'old-box', n: 1 }, 'an old box still opens')
  t.same(sealedRecipients(old), [oldKey.publicKey])
})

t.test('every way a version 2 box can be wrong is refused, saying why', async t => {
  const box = multi(sealToAll([a.publicKey, b.publicKey], settings, CONTEXT))
  const body = box.sealed
  const flip = (b64: string) => { const bytes = Buffer.from(b64, 'base64'); bytes[0] ^= 1; return bytes.toString('base64') }
  const withKey = (i: number, change: Partial<MultiSealedBox['sealed']['keys'][number]>) => ({ sealed: { ...body, keys: body.keys.map((k, j) => j === i ? { ...k, ...change } : k) } })
  refuses(t, () => openSealed({ sealed: { ...body, ct: flip(body.ct) } }, a, CONTEXT), 'not_opened', /tampered with/, 'ciphertext flipped')
  refuses(t, () => openSealed(withKey(1, { key: flip(body.keys[1].key) }), b, CONTEXT), 'not_opened', /tampered with/, 'b\'s wrapped key flipped')
  t.same(openSealed(withKey(1, { key: flip(body.keys[1].key) }), a, CONTEXT), settings, 'a\'s entry still opens: each wrap stands alone')
  // b's entry relabelled for the stranger: the wrap is bound to its recipient
  refuses(t, () => openSealed(withKey(1, { to: stranger.publicKey }), stranger, CONTEXT), 'not_opened', /does not open/, 'an entry readdressed')
  // a's wrapped key moved into b's entry: b's key does not unwrap it
  refuses(t, () => openSealed(withKey(1, { epk: body.keys[0].epk, nonce: body.keys[0].nonce, key: body.keys[0].key }), b, CONTEXT), 'not_opened', /does not open/, 'a wrap swapped between recipients')
  // the content of one box under the wraps of another (same recipients, same context)
  const other = multi(sealToAll([a.publicKey, b.publicKey], { password: 'other' }, CONTEXT))
  refuses(t, () => openSealed({ sealed: { ...body, ct: other.sealed.ct, nonce: other.sealed.nonce } }, a, CONTEXT), 'not_opened', /does not open/, 'a ciphertext spliced from another box')
  // a version 1 box is not a wrapped key, nor is a wrapped key a version 1 box
  const asV1 = { sealed: { v: 1, alg: body.alg, to: body.keys[0].to, epk: body.keys[0].epk, nonce: body.keys[0].nonce, ct: body.keys[0].key } }
  refuses(t, () => openSealed(asV1, a, CONTEXT), 'not_opened', /does not open/, 'a wrapped key taken for a version 1 box')
  refuses(t, () => openSealed(withKey(0, { key: 'AA==' }), a, CONTEXT), 'malformed', /field 'keys.0.key' must be 64 base64 characters/, 'a short wrapped key')
  refuses(t, () => openSealed({ sealed: { ...body, keys: [body.keys[0], body.keys[0]] } }, a, CONTEXT), 'malformed', /must name each recipient once/, 'a recipient twice')
  refuses(t, () => openSealed({ sealed: { ...body, keys: [] } }, a, CONTEXT), 'malformed', /field 'keys'/, 'no recipient')
  refuses(t, () => openSealed({ sealed: { ...body, to: a.publicKey } }, a, CONTEXT), 'malformed', /malformed sealed box/, 'a version 1 field in a version 2 box')
  refuses(t, () => sealToAll([], settings, CONTEXT), 'bad_key', /no recipient/, 'sealing to nobody')
  refuses(t, () => sealToAll([a.publicKey, 'ab'], settings, CONTEXT), 'bad_key', /64-hex Ed25519 public key/, 'sealing to a bad key among good ones')
  refuses(t, () => sealToAll(Array.from({ length: 17 }, () => key().publicKey), settings, CONTEXT), 'bad_key', /at most 16 recipients/, 'too many recipients')
})

t.test('round trip: any JSON object, any set of keys, any context', async t => {
  const keys = Array.from({ length: 4 }, key)
  fc.assert(fc.property(
    fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 }),
    fc.subarray(keys, { minLength: 1 }),
    fc.string({ maxLength: 40 }),
    (plain, to, context) => {
      const value = JSON.parse(JSON.stringify(plain)) as { [k: string]: JsonValue }
      const box = JSON.parse(JSON.stringify(sealToAll(to.map(k => k.publicKey), value, context))) as unknown
      for (const k of keys) {
        if (to.includes(k)) {
          if (JSON.stringify(openSealed(box, k, context)) !== JSON.stringify(value)) return false
        } else {
          try { openSealed(box, k, context); return false } catch (err) { if ((err as LedgerMeshError).details.reason !== 'wrong_recipient') return false }
        }
      }
      return true
    }
  ), { numRuns: 150 })
  t.pass('every listed key opens what was sealed; every other key is told it is not a recipient')
})

t.test('a node seals a profile to every master; each master accepts and opens it', async t => {
  const node = key()
  const signed = signUnlessSigned({ profile: { name: 'p1', kind: 'mta', subaccount: 'acme', settings } }, node, { masterKeys: [a.publicKey, b.publicKey] })
  validatePolicy(signed)
  const box = policyBody(signed).settings as unknown as MultiSealedBox
  t.same(sealedRecipients(box), [a.publicKey, b.publicKey], 'sealed to both masters')
  for (const master of [a, b]) {
    t.doesNotThrow(() => { checkSealedForMaster({ op: 'put', policy: signed }, master) }, 'the master accepts it')
    t.same(openProfileSettings(signed, master), settings, 'and opens it')
  }
  refuses(t, () => { checkSealedForMaster({ op: 'put', policy: signed }, c) }, 'settings_not_for_master', /sealed to keys [0-9a-f]{12}…, [0-9a-f]{12}…, not to the master's key/, 'a master it is not addressed to')
  refuses(t, () => openProfileSettings(signed, c), 'settings_not_opened', /not to this node's key .*no trusted master wrote a copy/, 'opening with a key it is not addressed to')
})

t.test('a master opens a profile from a copy for its key, only one for that profile', async t => {
  const node = key()
  const profile = signUnlessSigned({ profile: { name: 'p1', kind: 'mta', subaccount: 'acme', settings } }, node, { masterKeys: [a.publicKey] })
  const id = String(policyBody(profile).id)
  const copy = (to: string, profileId = id, box = sealTo(to, settings, profileContext('p1', node.publicKey))) =>
    preparePolicy({ settings_copy: { profile: 'p1', profile_id: profileId, master_key: to, settings: box as never } }, a)
  t.same(openProfileSettings(profile, b, () => [copy(b.publicKey)]), settings, 'b opens its copy')
  refuses(t, () => openProfileSettings(profile, b, () => [copy(c.publicKey)]), 'settings_not_opened', /no trusted master wrote a copy/, 'a copy for another master')
  refuses(t, () => openProfileSettings(profile, b, () => [copy(b.publicKey, 'ab'.repeat(32))]), 'settings_not_opened', /no trusted master wrote a copy/, 'a copy of another profile')
  const foreign = copy(b.publicKey, id, sealTo(b.publicKey, settings, profileContext('p2', node.publicKey)))
  refuses(t, () => openProfileSettings(profile, b, () => [foreign]), 'settings_not_opened', /nor does its copy for this key: .*sealed for another context/, 'a copy holding another profile\'s box')
  t.throws(() => { validatePolicy(copy(b.publicKey, id, sealTo(c.publicKey, settings, profileContext('p1', node.publicKey)))) }, { code: 'bad_policy', message: /sealed to its master_key/ }, 'a copy whose box is for another key than it names')
})
