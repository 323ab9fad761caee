import { randomBytes, timingSafeEqual } from 'node:crypto'
import { LedgerMeshError } from '../../base/errors.js'
import { sha256Hex } from '../../policies/canonical.js'

/**
 * A join token, as Kubernetes' bootstrap tokens: a public id and a secret, then the masters it
 * may be shown to, `lmjt.<id>.<secret>.<pin>...`. The ledger holds only the id and the secret's
 * SHA-256 (in a master-signed `join_token` policy), so every replica can see which tokens exist
 * and none can use one. Each pin is the first 16 hex digits of a master key the ledger trusted
 * when the token was made (as kubeadm's discovery hash pins the control plane): a joining node
 * presents the token only to a peer whose noise-authenticated key matches one, so whoever
 * answers at a master's address does not learn it. A token without pins (made before pins
 * existed) is shown to whoever answers first.
 */
const PREFIX = 'lmjt'
/** At most this many master keys pinned (a token is pasted into env files: it stays short). */
export const MAX_PINS = 8
const PIN_HEX = 16
export const TOKEN_PATTERN = /^lmjt\.([0-9a-f]{16})\.([0-9a-f]{64})((?:\.[0-9a-f]{16}){0,8})$/
export const TOKEN_FORM = `${PREFIX}.<16 hex>.<64 hex>[.<16 hex master pin>...]`

export interface JoinToken { tokenId: string, secret: string, text: string, pins: string[] }

/** A new token, pinned to `masterKeys` (the first MAX_PINS of them, in their order). */
export function newJoinToken (masterKeys: readonly string[] = []): JoinToken {
  const tokenId = randomBytes(8).toString('hex')
  const secret = randomBytes(32).toString('hex')
  const pins = [...new Set(masterKeys.map(k => k.slice(0, PIN_HEX)))].slice(0, MAX_PINS)
  return { tokenId, secret, pins, text: [PREFIX, tokenId, secret, ...pins].join('.') }
}

/** Whether `key` (64 hex) is a master the token may be shown to: it matches a pin, or the token has none. */
export function pinAdmits (token: Pick<JoinToken, 'pins'>, key: string | undefined): boolean {
  return token.pins.length === 0 || (key !== undefined && token.pins.includes(key.slice(0, PIN_HEX)))
}

/** Reads a token's text; the error never repeats the secret. */
export function parseJoinToken (text: string): JoinToken {
  const match = TOKEN_PATTERN.exec(text.trim())
  if (match === null) {
    throw new LedgerMeshError('unauthorized', `the join token is not of the form ${TOKEN_FORM} (as 'create join token' prints it)`, { reason: 'bad_token' })
  }
  return { tokenId: match[1], secret: match[2], text: text.trim(), pins: match[3].split('.').filter(p => p !== '') }
}

export function secretDigest (secret: string): string {
  return sha256Hex(secret)
}

/** Compares a presented secret with a stored digest in constant time. */
export function secretMatches (secret: string, digest: string): boolean {
  const a = Buffer.from(secretDigest(secret), 'hex')
  const b = Buffer.from(digest, 'hex')
  return a.length === b.length && timingSafeEqual(a, b)
}
