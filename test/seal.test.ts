import { randomBytes } from 'node:crypto'
import t from 'tap'
import { Ed25519Signer } from '../src/policies/keys.js'
import { policyBody } from '../src/policies/policy.js'
import { preparePolicy } from '../src/policies/prepare.js'
import { type SealedBox, openSealed, sealTo } from '../src/policies/seal.js'
import { checkSealedForMaster, openProfileSettings, profileContext, sealForMaster } from '../src/policies/sealed-settings.js'
import { prepareSealed, signUnlessSigned } from '../src/policies/sign-input.js'
import { validatePolicy } from '../src/policies/validate.js'
import { refuses as refusesWith } from './helpers/refuses.js'

// Sealed boxes (src/policies/seal.ts) and the sealing rules for profile settings
// (src/policies/sealed-settings.ts): a box opens only with its recipient's key and only for the
// context it was sealed for; anything else is a LedgerMeshError that says why.

const key = () => new Ed25519Signer(randomBytes(32))
const alice = key()
const bob = key()
const secret = `hunter2-${randomBytes(6).toString('hex')}`
const settings = { password: secret, session: { cookie: 'c-' + randomBytes(4).toString('hex'), ttl: 3600 }, tags: ['é', '✓'] }
const CONTEXT = 'profile:p1|author:test'

/** A copy of the box with `field` of its body replaced by `change(old value)`. */
function tampered (box: SealedBox, field: keyof SealedBox['sealed'], change: (value: string) => string): SealedBox {
  return { sealed: { ...box.sealed, [field]: change(String(box.sealed[field])) } }
}

const flipHex = (hex: string) => (hex[0] === '0' ? '1' : '0') + hex.slice(1)
const flipBase64 = (b64: string) => { const bytes = Buffer.from(b64, 'base64'); bytes[0] ^= 1; return bytes.toString('base64') }

const refuses = (tt: typeof t, fn: () => unknown, reason: string, message: RegExp, what: string): void => { refusesWith(tt, fn, { reason, message, secret }, what) }

t.test('a box opens with its recipient\'s key, for its context, to exactly what was sealed', async t => {
  const box = sealTo(alice.publicKey, settings, CONTEXT)
  t.same(Object.keys(box), ['sealed'])
  t.match(box.sealed, { v: 1, alg: 'x25519-hkdf-sha256-xchacha20poly1305', to: alice.publicKey, epk: /^[0-9a-f]{64}$/, nonce: /^[0-9a-f]{48}$/, ct: /^[A-Za-z0-9+/]+=*$/ })
  t.notMatch(JSON.stringify(box), secret, 'the box does not hold the plaintext')
  t.same(openSealed(box, alice, CONTEXT), settings, 'round trip')
  const again = sealTo(alice.publicKey, settings, CONTEXT)
  t.not(again.sealed.epk, box.sealed.epk, 'a fresh ephemeral key per box')
  t.not(again.sealed.nonce, box.sealed.nonce, 'a fresh nonce per box')
  t.not(again.sealed.ct, box.sealed.ct, 'two boxes of the same settings differ')
  t.same(openSealed(JSON.parse(JSON.stringify(again)), alice, CONTEXT), settings, 'a box survives JSON (the ledger) as is')
})

t.test('every way a box can be wrong is refused, saying why', async t => {
  const box = sealTo(alice.publicKey, settings, CONTEXT)
  refuses(t, () => openSealed(box, bob, CONTEXT), 'wrong_recipient', /sealed to key [0-9a-f]{12}…, not to this node's key/, 'another key')
  // rewriting `to` does not help the other key: the key agreement and the AAD both fail
  refuses(t, () => openSealed(tampered(box, 'to', () => bob.publicKey), bob, CONTEXT), 'not_opened', /does not open/, '`to` rewritten to the other key')
  refuses(t, () => openSealed(tampered(box, 'ct', flipBase64), alice, CONTEXT), 'not_opened', /tampered with, or sealed for another context/, 'ciphertext flipped')
  refuses(t, () => openSealed(tampered(box, 'ct', ct => Buffer.from(ct, 'base64').subarray(0, -1).toString('base64')), alice, CONTEXT), 'not_opened', /does not open/, 'ciphertext truncated')
  refuses(t, () => openSealed(tampered(box, 'nonce', flipHex), alice, CONTEXT), 'not_opened', /does not open/, 'nonce flipped')
  refuses(t, () => openSealed(tampered(box, 'epk', flipHex), alice, CONTEXT), 'not_opened', /does not open/, 'ephemeral key changed')
  refuses(t, () => openSealed(tampered(box, 'epk', () => '00'.repeat(32)), alice, CONTEXT), 'not_opened', /ephemeral key is not usable/, 'a low-order ephemeral key')
  refuses(t, () => openSealed(box, alice, 'profile:p2|author:test'), 'not_opened', /sealed for another context than "profile:p2/, 'another context')
  refuses(t, () => openSealed({ sealed: { ...box.sealed, v: 3 } }, alice, CONTEXT), 'unknown_version', /version 3 is not known/, 'a later version')
  refuses(t, () => openSealed({ sealed: { ...box.sealed, alg: 'rot13' } }, alice, CONTEXT), 'malformed', /field 'alg'/, 'another algorithm')
  refuses(t, () => openSealed({ sealed: { ...box.sealed, extra: 1 } }, alice, CONTEXT), 'malformed', /malformed sealed box/, 'an extra field')
  refuses(t, () => openSealed({ sealed: { ...box.sealed, nonce: 'zz' } }, alice, CONTEXT), 'malformed', /field 'nonce'/, 'a short nonce')
  refuses(t, () => openSealed({ ...box, also: 1 }, alice, CONTEXT), 'malformed', /not a sealed box/, 'a second key beside sealed')
  refuses(t, () => openSealed(settings, alice, CONTEXT), 'malformed', /not a sealed box/, 'plain settings')
  refuses(t, () => sealTo('ab'.repeat(16), settings, CONTEXT), 'bad_key', /64-hex Ed25519 public key/, 'sealing to a short key')
  refuses(t, () => sealTo('ff'.repeat(32), settings, CONTEXT), 'bad_key', /not a valid Ed25519 public key/, 'sealing to a point off the curve')
})

t.test('a node seals a profile\'s plain settings to the master before signing, bound to the profile and its author', async t => {
  const master = key()
  const node = key()
  const plain = { profile: { name: 'p1', kind: 'mta', subaccount: 'acme', settings } }
  const signed = signUnlessSigned(plain, node, { masterKeys: [master.publicKey] })
  const body = policyBody(signed)
  t.notMatch(JSON.stringify(signed), secret, 'the signed policy holds no plain settings')
  t.equal((body.settings as unknown as SealedBox).sealed.to, master.publicKey, 'sealed to the master')
  t.equal(body.public_key, node.publicKey, 'signed by the node')
  validatePolicy(signed)
  t.same(openSealed(body.settings, master, profileContext('p1', node.publicKey)), settings, 'the master opens them')
  t.same(openProfileSettings(signed, master), settings)
  t.doesNotThrow(() => { checkSealedForMaster({ op: 'put', policy: signed }, master) }, 'the master accepts it')
  t.same(plain.profile.settings, settings, 'the caller\'s policy is not changed')

  // no settings, empty settings and other types are left alone; a box is not sealed twice
  for (const p of [{ profile: { name: 'p2', kind: 'mta', subaccount: 'acme' } }, { profile: { name: 'p3', kind: 'mta', subaccount: 'acme', settings: {} } }, { worker: { name: 'w', settings: { a: 1 } } }]) {
    t.same(sealForMaster(p, { masterKeys: [master.publicKey], author: node.publicKey }), p, `${JSON.stringify(p)} unchanged`)
  }
  const resealed = prepareSealed(signed, node, { masterKeys: [master.publicKey] })
  t.same(policyBody(resealed).settings, body.settings, 'preparing a sealed profile again keeps its box')

  t.throws(() => signUnlessSigned(plain, node, { masterKeys: [] }), { code: 'master_unreachable', message: /does not know yet/ }, 'no master key yet: refused, not signed in plain text')
})

t.test('the master refuses a profile whose settings are not a box to it that opens', async t => {
  const master = key()
  const client = key()
  const refusal = (policy: ReturnType<typeof preparePolicy>, reason: string, message: RegExp, what: string) => {
    refuses(t, () => { checkSealedForMaster({ op: 'put', policy }, master) }, reason, message, what)
  }
  const profile = (s: unknown, name = 'p1') => preparePolicy({ profile: { name, kind: 'mta', subaccount: 'acme', settings: s as never } }, client)
  refusal(profile(settings), 'settings_not_sealed', /its settings are plain text, and plain settings never go on the ledger/, 'client-signed plain settings')
  refusal(profile(sealTo(client.publicKey, settings, profileContext('p1', client.publicKey))), 'settings_not_for_master', /sealed to key [0-9a-f]{12}…, not to the master's key/, 'sealed to another key')
  // a box copied from another profile (or another author's) does not open here
  refusal(profile(sealTo(master.publicKey, settings, profileContext('other', client.publicKey))), 'settings_not_opened', /do not open with the master's key/, 'a box sealed for another profile')
  refusal(profile(sealTo(master.publicKey, settings, profileContext('p1', master.publicKey))), 'settings_not_opened', /do not open with the master's key/, 'a box sealed for another author')
  t.doesNotThrow(() => { checkSealedForMaster({ op: 'put', policy: profile(sealTo(master.publicKey, settings, profileContext('p1', client.publicKey))) }, master) }, 'a client that seals to the master itself is accepted')
  t.doesNotThrow(() => { checkSealedForMaster({ op: 'put', policy: profile({}) }, master) }, 'empty settings need no box')
  t.doesNotThrow(() => { checkSealedForMaster({ op: 'put', policy: preparePolicy({ item: { settings } }, client) }, master) }, 'other types are not profiles')
  refuses(t, () => openProfileSettings(profile(settings), master), 'settings_not_sealed', /plain text on the ledger/, 'the allocator on a plain profile')
})

t.test('a refused settings field never shows its value', async t => {
  const err = t.throws(() => { validatePolicy({ profile: { name: 'p1', kind: 'mta', subaccount: 'acme', settings: secret as never } }, { requireSigned: false }) }) as unknown as Error
  t.match(err.message, /field 'settings'/)
  t.notMatch(err.message, secret, 'the value is not quoted')
})
