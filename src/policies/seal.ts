import { randomBytes } from 'node:crypto'
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import { ed25519, x25519 } from '@noble/curves/ed25519.js'
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256 } from '@noble/hashes/sha2.js'
import type { z } from 'zod'
import { LedgerMeshError } from '../base/errors.js'
import type { JsonValue } from './policy.js'
import { MAX_SEAL_RECIPIENTS, SEALED_BOX_ALG, sealedBoxSchema, sealedMultiBoxSchema } from './schemas.js'

/**
 * Sealed boxes: a JSON object (a profile's settings) encrypted to one node's identity key, or
 * to several, so it can travel on the replicated ledger while only those nodes read it.
 *
 * Format, version 1, to one key (the whole value of the field that holds it, e.g. `settings`):
 *
 *   {"sealed": {"v": 1, "alg": "x25519-hkdf-sha256-xchacha20poly1305",
 *               "to": <recipient Ed25519 public key, hex>, "epk": <ephemeral X25519 public key, hex>,
 *               "nonce": <24 bytes, hex>, "ct": <ciphertext ‖ 16-byte Poly1305 tag, base64>}}
 *
 * - the recipient's X25519 key is its Ed25519 identity key in Montgomery form (nodes have no
 *   other key); the sender uses a fresh ephemeral X25519 key for every box, so a box reveals
 *   nothing about its sender and two boxes of the same text differ;
 * - key = HKDF-SHA256(ikm = X25519(ephemeral secret, recipient), salt = epk ‖ recipient X25519
 *   public key, info = HKDF_INFO), 32 bytes; nonce: 24 random bytes (XChaCha20's nonce is large
 *   enough for random choice);
 * - AAD = AAD_PREFIX ‖ context ‖ "|to:" ‖ to: the box opens only for the context it was sealed
 *   for (e.g. "profile:<name>|author:<key>"), so it cannot be copied into another policy, and
 *   a box whose `to` was rewritten does not open either;
 * - the plaintext is the UTF-8 JSON text of an object.
 *
 * Version 2, to several keys (a profile's settings for every master; sealToAll):
 *
 *   {"sealed": {"v": 2, "alg": <as above>, "nonce": <24 bytes, hex>, "ct": <base64>,
 *               "keys": [{"to": <key>, "epk": <ephemeral key>, "nonce": <24 bytes, hex>,
 *                         "key": <wrapped content key ‖ tag, 48 bytes, base64>}, ...]}}
 *
 * - the plaintext is encrypted once under a random 32-byte content key (a fresh key per box,
 *   so the random nonce never meets the same key twice), AAD = V2_AAD_PREFIX ‖ context: the
 *   ciphertext does not grow with the number of recipients (settings may be large and a
 *   policy holds at most 64 KiB);
 * - for each recipient the content key is sealed as in version 1 (a fresh ephemeral key, HKDF,
 *   a random nonce) under WRAP_INFO and AAD = WRAP_AAD_PREFIX ‖ context ‖ "|to:" ‖ to: other
 *   labels than version 1's, so a wrapped key is never taken for a box, nor a box for one.
 *
 * Sealing to one key always gives version 1, byte for byte the format older nodes wrote.
 * A later format gets a new `v` (and `alg`); a node refuses a version it does not know rather
 * than guess. Every failure is a LedgerMeshError (`bad_policy`) whose details carry a `reason`
 * (`malformed`, `unknown_version`, `wrong_recipient`, `bad_key`, `not_opened`, `bad_plaintext`)
 * and whose message never holds the plaintext.
 */
export const SEAL_VERSION = 1
export const MULTI_SEAL_VERSION = 2
const HKDF_INFO = new TextEncoder().encode(`ledgermesh sealed box v${SEAL_VERSION} ${SEALED_BOX_ALG}`)
const AAD_PREFIX = `ledgermesh-sealed-box/v${SEAL_VERSION}|`
const WRAP_INFO = new TextEncoder().encode(`ledgermesh sealed box v${MULTI_SEAL_VERSION} key ${SEALED_BOX_ALG}`)
const WRAP_AAD_PREFIX = `ledgermesh-sealed-box/v${MULTI_SEAL_VERSION}/key|`
const V2_AAD_PREFIX = `ledgermesh-sealed-box/v${MULTI_SEAL_VERSION}|`
const NONCE_BYTES = 24
const CONTENT_KEY_BYTES = 32

export type JsonObject = { [key: string]: JsonValue }

export interface SealedBody {
  v: number
  alg: string
  to: string
  epk: string
  nonce: string
  ct: string
}

/** A box to one key (version 1). */
export interface SealedBox { sealed: SealedBody }

export interface WrappedKey { to: string, epk: string, nonce: string, key: string }

export interface MultiSealedBody {
  v: number
  alg: string
  keys: WrappedKey[]
  nonce: string
  ct: string
}

/** A box to several keys (version 2). */
export interface MultiSealedBox { sealed: MultiSealedBody }

/** What opening a box needs: the recipient's Ed25519 key pair (an Ed25519Signer has both). */
export interface SealKey {
  /** hex of the 32-byte Ed25519 public key */
  readonly publicKey: string
  /** the 32-byte Ed25519 seed */
  readonly seed: Uint8Array
}

const short = (key: string) => `${key.slice(0, 12)}…`
const utf8 = new TextEncoder()

function fail (reason: string, message: string, details: Record<string, unknown> = {}): LedgerMeshError {
  return new LedgerMeshError('bad_policy', message, { reason, ...details })
}

/** True for a value shaped like a box: an object whose only key is `sealed` (its contents unchecked). */
export function isSealedBox (value: unknown): value is SealedBox | MultiSealedBox {
  return typeof value === 'object' && value !== null && !Array.isArray(value) &&
    Object.keys(value).length === 1 && Object.hasOwn(value, 'sealed')
}

function montgomeryPublic (edPublicHex: string): Uint8Array {
  if (!/^[0-9a-f]{64}$/.test(edPublicHex)) throw fail('bad_key', `cannot seal to ${JSON.stringify(edPublicHex.slice(0, 70))}: a recipient is a 64-hex Ed25519 public key`)
  try {
    return ed25519.utils.toMontgomery(Buffer.from(edPublicHex, 'hex'))
  } catch (err) {
    throw fail('bad_key', `cannot seal to key ${short(edPublicHex)}: it is not a valid Ed25519 public key (${(err as Error).message.slice(0, 80)})`)
  }
}

function deriveKey (shared: Uint8Array, epk: Uint8Array, recipient: Uint8Array, info: Uint8Array): Uint8Array {
  const salt = new Uint8Array(epk.length + recipient.length)
  salt.set(epk, 0)
  salt.set(recipient, epk.length)
  return hkdf(sha256, shared, salt, info, 32)
}

const aadOf = (context: string, to: string) => utf8.encode(`${AAD_PREFIX}${context}|to:${to}`)
const wrapAadOf = (context: string, to: string) => utf8.encode(`${WRAP_AAD_PREFIX}${context}|to:${to}`)
const v2AadOf = (context: string) => utf8.encode(`${V2_AAD_PREFIX}${context}`)

/** Encrypts `plain` to one recipient with a fresh ephemeral key and nonce: the core of a v1 box and of a v2 wrapped key. */
function sealOne (to: string, plain: Uint8Array, info: Uint8Array, aad: Uint8Array): { epk: string, nonce: string, ct: Uint8Array } {
  const recipient = montgomeryPublic(to)
  const ephemeral = x25519.utils.randomSecretKey()
  const epk = x25519.getPublicKey(ephemeral)
  const shared = x25519.getSharedSecret(ephemeral, recipient)
  const key = deriveKey(shared, epk, recipient, info)
  const nonce = randomBytes(NONCE_BYTES)
  const ct = xchacha20poly1305(key, nonce, aad).encrypt(plain)
  ephemeral.fill(0)
  shared.fill(0)
  key.fill(0)
  return { epk: Buffer.from(epk).toString('hex'), nonce: nonce.toString('hex'), ct }
}

/** Decrypts what sealOne encrypted to `key`; throws not_opened, saying why, when it does not open. */
function openOne (key: SealKey, sealed: { epk: string, nonce: string, ct: Uint8Array }, info: Uint8Array, aad: Uint8Array, context: string): Uint8Array {
  const epk = Buffer.from(sealed.epk, 'hex')
  const secret = ed25519.utils.toMontgomerySecret(key.seed)
  let shared: Uint8Array
  try {
    shared = x25519.getSharedSecret(secret, epk)
  } catch (err) {
    throw fail('not_opened', `the sealed box does not open: its ephemeral key is not usable (${(err as Error).message.slice(0, 80)})`)
  } finally {
    secret.fill(0)
  }
  const derived = deriveKey(shared, epk, montgomeryPublic(key.publicKey), info)
  shared.fill(0)
  try {
    return xchacha20poly1305(derived, Buffer.from(sealed.nonce, 'hex'), aad).decrypt(sealed.ct)
  } catch {
    throw notOpened(key, context)
  } finally {
    derived.fill(0)
  }
}

const notOpened = (key: SealKey, context: string) =>
  fail('not_opened', `the sealed box does not open with key ${short(key.publicKey)}: it was tampered with, or sealed for another context than ${JSON.stringify(context.slice(0, 200))}`)

function plaintextOf (plaintext: JsonObject): Uint8Array {
  if (typeof plaintext !== 'object' || plaintext === null || Array.isArray(plaintext)) {
    throw fail('bad_plaintext', 'only a JSON object can be sealed')
  }
  return utf8.encode(JSON.stringify(plaintext))
}

/**
 * Seals `plaintext` (a JSON object) to the node whose Ed25519 public key is `recipientEd25519PubHex`,
 * for `context`: openSealed must be given the same context.
 */
export function sealTo (recipientEd25519PubHex: string, plaintext: JsonObject, context: string): SealedBox {
  const plain = plaintextOf(plaintext)
  const { epk, nonce, ct } = sealOne(recipientEd25519PubHex, plain, HKDF_INFO, aadOf(context, recipientEd25519PubHex))
  plain.fill(0)
  return { sealed: { v: SEAL_VERSION, alg: SEALED_BOX_ALG, to: recipientEd25519PubHex, epk, nonce, ct: Buffer.from(ct).toString('base64') } }
}

/**
 * Seals `plaintext` for `context` so that each of `recipients` opens it with its own key: a
 * version 1 box when they are one key, else version 2. Repeated keys count once.
 */
export function sealToAll (recipients: readonly string[], plaintext: JsonObject, context: string): SealedBox | MultiSealedBox {
  const keys = [...new Set(recipients)]
  if (keys.length === 0) throw fail('bad_key', 'cannot seal to no recipient: name at least one key')
  if (keys.length === 1) return sealTo(keys[0], plaintext, context)
  if (keys.length > MAX_SEAL_RECIPIENTS) throw fail('bad_key', `cannot seal to ${keys.length} keys: a box has at most ${MAX_SEAL_RECIPIENTS} recipients`)
  for (const key of keys) montgomeryPublic(key) // refuse a bad key before encrypting anything
  const plain = plaintextOf(plaintext)
  const contentKey = randomBytes(CONTENT_KEY_BYTES)
  const nonce = randomBytes(NONCE_BYTES)
  try {
    const ct = xchacha20poly1305(contentKey, nonce, v2AadOf(context)).encrypt(plain)
    const wrapped = keys.map(to => {
      const one = sealOne(to, contentKey, WRAP_INFO, wrapAadOf(context, to))
      return { to, epk: one.epk, nonce: one.nonce, key: Buffer.from(one.ct).toString('base64') }
    })
    return { sealed: { v: MULTI_SEAL_VERSION, alg: SEALED_BOX_ALG, keys: wrapped, nonce: nonce.toString('hex'), ct: Buffer.from(ct).toString('base64') } }
  } finally {
    plain.fill(0)
    contentKey.fill(0)
  }
}

/** The keys a box is sealed to, or undefined when `value` is not a well-formed box. */
export function sealedRecipients (value: unknown): string[] | undefined {
  if (!isSealedBox(value)) return undefined
  const v1 = sealedBoxSchema.safeParse(value.sealed)
  if (v1.success) return [v1.data.to]
  const v2 = sealedMultiBoxSchema.safeParse(value.sealed)
  return v2.success ? v2.data.keys.map(k => k.to) : undefined
}

function parsed<T> (schema: z.ZodType<T>, raw: unknown): T {
  const result = schema.safeParse(raw)
  if (result.success) return result.data
  const issue = result.error.issues[0]
  throw fail('malformed', `malformed sealed box: field '${issue.path.map(String).join('.')}' ${issue.message}`)
}

/**
 * Opens a box sealed to `key` (alone or among others) for `context`, and returns the JSON
 * object it holds. Throws a LedgerMeshError naming why when the box is malformed, of an
 * unknown version, not addressed to `key`, or does not open (tampered, or sealed for another
 * context).
 */
export function openSealed (box: unknown, key: SealKey, context: string): JsonObject {
  if (!isSealedBox(box)) throw fail('malformed', 'not a sealed box: a sealed value is {"sealed": {...}} and nothing else')
  const raw = box.sealed as unknown
  const version = typeof raw === 'object' && raw !== null && 'v' in raw ? raw.v : undefined
  if (version !== undefined && version !== SEAL_VERSION && version !== MULTI_SEAL_VERSION) {
    throw fail('unknown_version', `sealed box version ${JSON.stringify(version)} is not known to this node (it opens versions ${SEAL_VERSION} and ${MULTI_SEAL_VERSION})`)
  }
  let plain: Uint8Array
  if (version === MULTI_SEAL_VERSION) {
    const body = parsed(sealedMultiBoxSchema, raw)
    const mine = body.keys.find(k => k.to === key.publicKey)
    if (mine === undefined) {
      const to = body.keys.map(k => k.to)
      throw fail('wrong_recipient', `the box is sealed to keys ${to.map(short).join(', ')}, not to this node's key ${short(key.publicKey)}`, { to })
    }
    const contentKey = openOne(key, { epk: mine.epk, nonce: mine.nonce, ct: Buffer.from(mine.key, 'base64') }, WRAP_INFO, wrapAadOf(context, mine.to), context)
    try {
      plain = xchacha20poly1305(contentKey, Buffer.from(body.nonce, 'hex'), v2AadOf(context)).decrypt(Buffer.from(body.ct, 'base64'))
    } catch {
      throw notOpened(key, context)
    } finally {
      contentKey.fill(0)
    }
  } else {
    const body = parsed(sealedBoxSchema, raw)
    if (body.to !== key.publicKey) {
      throw fail('wrong_recipient', `the box is sealed to key ${short(body.to)}, not to this node's key ${short(key.publicKey)}`, { to: body.to })
    }
    plain = openOne(key, { epk: body.epk, nonce: body.nonce, ct: Buffer.from(body.ct, 'base64') }, HKDF_INFO, aadOf(context, body.to), context)
  }
  let value: unknown
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(plain))
  } catch {
    throw fail('bad_plaintext', 'the sealed box opens but does not hold JSON text')
  } finally {
    plain.fill(0)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw fail('bad_plaintext', 'the sealed box opens but does not hold a JSON object')
  return value as JsonObject
}
