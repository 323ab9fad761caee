import { createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto'

/**
 * Ed25519 with node:crypto (OpenSSL's native code, no extra dependency); bench/verify-rate.ts
 * measures its raw verify rate beside the whole sync path (docs/benchmarks.md).
 * Keys travel as hex: a public key is 32 bytes, a signature 64 bytes. The same 32-byte seed
 * is the node's libp2p identity, so peer id and policy author are one key.
 */

// DER prefixes that wrap a raw 32-byte Ed25519 seed (PKCS#8) or public key (SPKI).
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

export interface Signer {
  /** hex of the 32-byte Ed25519 public key */
  readonly publicKey: string
  /** returns the 64-byte signature as hex */
  sign (message: string | Uint8Array): string
}

export class Ed25519Signer implements Signer {
  readonly publicKey: string
  readonly seed: Uint8Array
  private readonly key: KeyObject

  constructor (seed: Uint8Array) {
    if (seed.length !== 32) throw new TypeError(`an Ed25519 seed is 32 bytes, got ${seed.length}`)
    this.seed = seed
    this.key = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' })
    const spki = createPublicKey(this.key).export({ format: 'der', type: 'spki' })
    this.publicKey = spki.subarray(SPKI_ED25519_PREFIX.length).toString('hex')
  }

  sign (message: string | Uint8Array): string {
    return sign(null, typeof message === 'string' ? Buffer.from(message) : message, this.key).toString('hex')
  }
}

/**
 * Policies this process prepared and signed itself (preparePolicy records them), with the key
 * and the exact signing payload: a node that signs a policy and then checks it (a master
 * inserting what its own REST client sent) need not verify it again. Ed25519 is
 * deterministic, so a policy whose key, signature and payload equal one made here verifies,
 * and its id is the one preparePolicy computed from that content; anything else is verified
 * in full.
 */
const MAX_REMEMBERED_SIGNATURES = 1024
const ownSignatures = new Map<string, { publicKey: string, message: string }>()

/** Whether this process made exactly this signature, with this key, over this message. */
export function isOwnSignature (publicKeyHex: string, message: string | Uint8Array, signatureHex: string): boolean {
  const own = ownSignatures.get(signatureHex)
  return own !== undefined && own.publicKey === publicKeyHex && own.message === message
}

/** Forgets the signatures made here (benchmarks that measure verification of their own policies). */
export function forgetOwnSignatures (): void {
  ownSignatures.clear()
}

export function rememberOwnSignature (signature: string, publicKey: string, message: string): void {
  if (ownSignatures.size >= MAX_REMEMBERED_SIGNATURES) ownSignatures.delete(ownSignatures.keys().next().value as string)
  ownSignatures.set(signature, { publicKey, message })
}

const publicKeyCache = new Map<string, KeyObject>()

/** The KeyObject of a hex Ed25519 public key (cached), or undefined when it is not one. */
export function publicKeyObject (publicKeyHex: string): KeyObject | undefined {
  let key = publicKeyCache.get(publicKeyHex)
  if (key === undefined) {
    if (!/^[0-9a-f]{64}$/.test(publicKeyHex)) return undefined
    key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, Buffer.from(publicKeyHex, 'hex')]), format: 'der', type: 'spki' })
    if (publicKeyCache.size > 10_000) publicKeyCache.clear()
    publicKeyCache.set(publicKeyHex, key)
  }
  return key
}

/** True only for a well-formed public key and signature that verify over the message. */
export function verifySignature (publicKeyHex: string, message: string | Uint8Array, signatureHex: string): boolean {
  if (!/^[0-9a-f]{128}$/.test(signatureHex)) return false
  const key = publicKeyObject(publicKeyHex)
  if (key === undefined) return false
  try {
    return verify(null, typeof message === 'string' ? Buffer.from(message) : message, key, Buffer.from(signatureHex, 'hex'))
  } catch {
    return false
  }
}

/**
 * The hex Ed25519 public key of a libp2p peer: a node's peer id is its identity key, so the
 * key that signs its policies is the one its connections authenticate with (undefined for a
 * peer id without an embedded Ed25519 key).
 */
export function publicKeyHexOf (peer: { publicKey?: { type?: string, raw: Uint8Array } }): string | undefined {
  const key = peer.publicKey
  if (key === undefined || key.raw.length !== 32 || (key.type !== undefined && key.type !== 'Ed25519')) return undefined
  return Buffer.from(key.raw).toString('hex')
}
