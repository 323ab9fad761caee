import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { privateKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { LedgerMeshError } from '../base/errors.js'
import { Ed25519Signer } from '../policies/keys.js'

/**
 * The node's Ed25519 identity: one 32-byte seed under `<home>/identity/node.key` (hex).
 * The same key signs the node's policies and is its libp2p peer id.
 */
export async function loadOrCreateIdentity (home: string): Promise<{ signer: Ed25519Signer, created: boolean, path: string }> {
  const dir = join(home, 'identity')
  const path = join(dir, 'node.key')
  let text: string | undefined
  try {
    text = (await readFile(path, 'utf8')).trim()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new LedgerMeshError('bad_config', `cannot read identity file ${path}: ${(err as NodeJS.ErrnoException).code}`)
    }
  }
  if (text !== undefined) {
    if (!/^[0-9a-f]{64}$/.test(text)) throw new LedgerMeshError('bad_config', `identity file ${path} is corrupt: expected 64 hex characters`)
    return { signer: new Ed25519Signer(Buffer.from(text, 'hex')), created: false, path }
  }
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const seed = randomBytes(32)
  await writeFile(path, seed.toString('hex') + '\n', { mode: 0o600, flag: 'wx' })
  return { signer: new Ed25519Signer(seed), created: true, path }
}

/** The same key as a libp2p private key (seed ‖ public key). */
export function libp2pPrivateKey (signer: Ed25519Signer): PrivateKey {
  return privateKeyFromRaw(Buffer.concat([signer.seed, Buffer.from(signer.publicKey, 'hex')]))
}

export function peerIdFromSigner (signer: Ed25519Signer): string {
  return peerIdFromPrivateKey(libp2pPrivateKey(signer)).toString()
}
