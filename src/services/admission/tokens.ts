import { randomBytes, timingSafeEqual } from 'node:crypto'
import { LedgerMeshError } from '../../base/errors.js'
import { sha256Hex } from '../../policies/canonical.js'

/**
 * A join token, as Kubernetes' bootstrap tokens: a public id and a secret, `lmjt.<id>.<secret>`.
 * The ledger holds only the id and the secret's SHA-256 (in a master-signed `join_token`
 * policy), so every replica can see which tokens exist and none can use one.
 */
const PREFIX = 'lmjt'
const TOKEN = /^lmjt\.([0-9a-f]{16})\.([0-9a-f]{64})$/

export interface JoinToken { tokenId: string, secret: string, text: string }

export function newJoinToken (): JoinToken {
  const tokenId = randomBytes(8).toString('hex')
  const secret = randomBytes(32).toString('hex')
  return { tokenId, secret, text: `${PREFIX}.${tokenId}.${secret}` }
}

/** Reads a token's text; the error never repeats the secret. */
export function parseJoinToken (text: string): JoinToken {
  const match = TOKEN.exec(text.trim())
  if (match === null) {
    throw new LedgerMeshError('unauthorized', `the join token is not of the form ${PREFIX}.<16 hex>.<64 hex> (as 'create join token' prints it)`, { reason: 'bad_token' })
  }
  return { tokenId: match[1], secret: match[2], text: text.trim() }
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
