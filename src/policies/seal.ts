import { randomBytes } from 'node:crypto'
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js'
import { ed25519, x25519 } from '@noble/curves/ed25519.js'
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { LedgerMeshError } from '../base/errors.js'
import type { JsonValue } from './policy.js'
import { SEALED_BOX_ALG, sealedBoxSchema } from './schemas.js'

/**
 * Sealed boxes: a JSON object (a profile's settings) encrypted to one node's identity key, so
 * it can travel on the replicated ledger while only that node reads it.
 *
 * Format, version 1 (the whole value of the field that holds it, e.g. a profile's `settings`):
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
 * A later format gets a new `v` (and `alg`); a node refuses a version it does not know rather
 * than guess. Every failure is a LedgerMeshError (`bad_policy`) whose details carry a `reason`
 * (`malformed`, `unknown_version`, `wrong_recipient`, `bad_key`, `not_opened`, `bad_plaintext`)
 * and whose message never holds the plaintext.
 */
export const SEAL_VERSION = 1
const HKDF_INFO = new TextEncoder().encode(`ledgermesh sealed box v${SEAL_VERSION} ${SEALED_BOX_ALG}`)
const AAD_PREFIX = `ledgermesh-sealed-box/v${SEAL_VERSION}|`
const NONCE_BYTES = 24

export type JsonObject = { [key: string]: JsonValue }

export interface SealedBody {
  v: number
  alg: string
  to: string
  epk: string
  nonce: string
  ct: string
}

export interface SealedBox { sealed: SealedBody }

/** What opening a box needs: the recipient's Ed25519 key pair (an Ed25519Signer has both). */
export interface SealKey {
  /** hex of the 32-byte Ed25519 public key */
  readonly publicKey: string
  /** the 32-byte Ed25519 seed */
  readonly seed: Uint8Array
}

const short = (key: string) => `${key.slice(0, 12)}…`

function fail (reason: string, message: string, details: Record<string, unknown> = {}): LedgerMeshError {
  return new LedgerMeshError('bad_policy', message, { reason, ...details })
}

/** True for a value shaped like a box: an object whose only key is `sealed` (its contents unchecked). */
export function isSealedBox (value: unknown): value is SealedBox {
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

function deriveKey (shared: Uint8Array, epk: Uint8Array, recipient: Uint8Array): Uint8Array {
  const salt = new Uint8Array(epk.length + recipient.length)
  salt.set(epk, 0)
  salt.set(recipient, epk.length)
  return hkdf(sha256, shared, salt, HKDF_INFO, 32)
}

const aadOf = (context: string, to: string) => new TextEncoder().encode(`${AAD_PREFIX}${context}|to:${to}`)

/**
 * Seals `plaintext` (a JSON object) to the node whose Ed25519 public key is `recipientEd25519PubHex`,
 * for `context`: openSealed must be given the same context.
 */
export function sealTo (recipientEd25519PubHex: string, plaintext: JsonObject, context: string): SealedBox {
  if (typeof plaintext !== 'object' || plaintext === null || Array.isArray(plaintext)) {
    throw fail('bad_plaintext', 'only a JSON object can be sealed')
  }
  const recipient = montgomeryPublic(recipientEd25519PubHex)
  const ephemeral = x25519.utils.randomSecretKey()
  const epk = x25519.getPublicKey(ephemeral)
  const shared = x25519.getSharedSecret(ephemeral, recipient)
  const key = deriveKey(shared, epk, recipient)
  const nonce = randomBytes(NONCE_BYTES)
  const ct = xchacha20poly1305(key, nonce, aadOf(context, recipientEd25519PubHex)).encrypt(new TextEncoder().encode(JSON.stringify(plaintext)))
  ephemeral.fill(0)
  shared.fill(0)
  key.fill(0)
  return {
    sealed: {
      v: SEAL_VERSION,
      alg: SEALED_BOX_ALG,
      to: recipientEd25519PubHex,
      epk: Buffer.from(epk).toString('hex'),
      nonce: nonce.toString('hex'),
      ct: Buffer.from(ct).toString('base64')
    }
  }
}

/** The box's recipient key, or undefined when `value` is not a well-formed box. */
export function sealedTo (value: unknown): string | undefined {
  if (!isSealedBox(value)) return undefined
  const parsed = sealedBoxSchema.safeParse(value.sealed)
  return parsed.success ? parsed.data.to : undefined
}

/**
 * Opens a box sealed to `key` for `context`, and returns the JSON object it holds. Throws a
 * LedgerMeshError naming why when the box is malformed, of an unknown version, addressed to
 * another key, or does not open (tampered, or sealed for another context).
 */
export function openSealed (box: unknown, key: SealKey, context: string): JsonObject {
  if (!isSealedBox(box)) throw fail('malformed', 'not a sealed box: a sealed value is {"sealed": {...}} and nothing else')
  const raw = box.sealed as unknown
  if (typeof raw === 'object' && raw !== null && 'v' in raw && raw.v !== SEAL_VERSION) {
    throw fail('unknown_version', `sealed box version ${JSON.stringify(raw.v)} is not known to this node (it opens version ${SEAL_VERSION})`)
  }
  const parsed = sealedBoxSchema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw fail('malformed', `malformed sealed box: field '${issue.path.join('.')}' ${issue.message}`)
  }
  const body = parsed.data
  if (body.to !== key.publicKey) {
    throw fail('wrong_recipient', `the box is sealed to key ${short(body.to)}, not to this node's key ${short(key.publicKey)}`, { to: body.to })
  }
  const epk = Buffer.from(body.epk, 'hex')
  const secret = ed25519.utils.toMontgomerySecret(key.seed)
  let shared: Uint8Array
  try {
    shared = x25519.getSharedSecret(secret, epk)
  } catch (err) {
    throw fail('not_opened', `the sealed box does not open: its ephemeral key is not usable (${(err as Error).message.slice(0, 80)})`)
  } finally {
    secret.fill(0)
  }
  const derived = deriveKey(shared, epk, montgomeryPublic(key.publicKey))
  shared.fill(0)
  let plain: Uint8Array
  try {
    plain = xchacha20poly1305(derived, Buffer.from(body.nonce, 'hex'), aadOf(context, body.to)).decrypt(Buffer.from(body.ct, 'base64'))
  } catch {
    throw fail('not_opened', `the sealed box does not open with key ${short(key.publicKey)}: it was tampered with, or sealed for another context than ${JSON.stringify(context.slice(0, 200))}`)
  } finally {
    derived.fill(0)
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
