import { verifySignature, type Signer } from '../policies/keys.js'
import { LedgerMeshError } from '../base/errors.js'
import { formatCheckpoint, formatStateLine, parseCheckpoint, parseStateLine } from './tlog/checkpoint.js'
import { SIG_COSIGNATURE_V1, cosignedMessage, cosignerKey, formatNote, keyId, parseNote, timestampedSignature, verifyNote } from './tlog/note.js'

/** A position in the log: the last entry's seq and hash. seq 0 is the empty ledger. */
export interface Head {
  seq: number
  hash: string
}

/**
 * A signed tree head: the master's statement that the log up to `seq` ends in `hash` and has
 * the RFC 6962 Merkle root `root`. It is a C2SP checkpoint (origin, tree size = seq, root)
 * signed by the master's key as a timestamped Ed25519 note signature (c2sp.org/tlog-
 * cosignature, cosignature/v1, type 0x04): one format for sync, stores and `GET /checkpoint`.
 * Replicas accept entries only up to a head signed by a master key they trust whose root the
 * entries rebuild, so a relay (or anyone) serving sync cannot invent, drop or reorder entries
 * without detection. The chain hash is not signed: the root covers every entry's bytes, and
 * with them every link.
 */
export interface SignedHead extends Head {
  /** the Merkle root of the log's first `seq` entries, hex */
  root: string
  /** the checkpoint's origin line: the network's log (see logOrigin) */
  origin: string
  /** when the master signed it, UTC ISO-8601, whole seconds (the signature's timestamp) */
  time: string
  /** the master's Ed25519 public key, hex */
  publicKey: string
  /** Ed25519 over the cosignature/v1 message of the checkpoint at `time`, hex */
  signature: string
  /**
   * The live state at `seq`: how many policies, and the root of their sparse Merkle tree
   * (hex), signed as the checkpoint's state line. Absent in heads signed before it existed.
   */
  state?: StateCommitment
}

/** The live state's commitment: its policy count and sparse Merkle root (hex). */
export interface StateCommitment { size: number, root: string }

/**
 * The origin of a network's checkpoints: named after its first master's key, which every
 * replica pins, so every master of an HA network signs under the same origin.
 */
export function logOrigin (rootMasterKey: string): string {
  return `ledgermesh/${rootMasterKey.slice(0, 16)}`
}

/** The checkpoint the head signs: its note text. */
export function checkpointText (head: Pick<SignedHead, 'origin' | 'seq' | 'root' | 'state'>): string {
  const extensions = head.state === undefined ? [] : [formatStateLine({ size: head.state.size, root: Buffer.from(head.state.root, 'hex') })]
  return formatCheckpoint({ origin: head.origin, size: head.seq, root: Buffer.from(head.root, 'hex'), extensions })
}

function wellFormedState (state: unknown): boolean {
  if (state === undefined) return true
  const s = state as Partial<StateCommitment> | null
  return typeof s === 'object' && s !== null && Number.isSafeInteger(s.size) && (s.size ?? -1) >= 0 && typeof s.root === 'string' && /^[0-9a-f]{64}$/.test(s.root)
}

function timestampOf (time: string): number | undefined {
  const ms = Date.parse(time)
  return Number.isSafeInteger(ms) && ms % 1000 === 0 && ms >= 0 ? ms / 1000 : undefined
}

export function signHead (head: Head & { root: string, state?: StateCommitment }, signer: Signer, origin: string, time = new Date()): SignedHead {
  const seconds = Math.floor(time.getTime() / 1000)
  const unsigned = { seq: head.seq, hash: head.hash, root: head.root, origin, time: new Date(seconds * 1000).toISOString(), ...(head.state === undefined ? {} : { state: { size: head.state.size, root: head.state.root } }) }
  return { ...unsigned, publicKey: signer.publicKey, signature: signer.sign(cosignedMessage(checkpointText(unsigned), seconds)) }
}

/** True when the head is a well-formed checkpoint signed by `trustedKey` (the master's public key). */
export function verifyHead (head: SignedHead, trustedKey: string): boolean {
  if (head.publicKey !== trustedKey || typeof head.root !== 'string' || !/^[0-9a-f]{64}$/.test(head.root) || typeof head.origin !== 'string' || head.origin === '' || /\n/.test(head.origin) || !wellFormedState(head.state)) return false
  const seconds = timestampOf(head.time)
  return seconds !== undefined && verifySignature(trustedKey, cosignedMessage(checkpointText(head), seconds), head.signature)
}

/**
 * The signed head a checkpoint note is, when one of `masterKeys` signed it for `origin` (its
 * cosignature line): what a replica catching up from a tile mirror applies entries up to.
 * Without `hash`, the last entry's chain hash, which the checkpoint does not name (the
 * entries give it). Throws bad_signature naming what does not hold.
 */
export function headFromNote (noteText: string, origin: string, masterKeys: readonly string[]): Omit<SignedHead, 'hash'> {
  const note = parseNote(noteText)
  const checkpoint = parseCheckpoint(note.text)
  if (checkpoint.origin !== origin) throw new LedgerMeshError('bad_signature', `the checkpoint is of another log (origin ${JSON.stringify(checkpoint.origin.slice(0, 80))}, this network's is ${origin})`)
  const state = parseStateLine(checkpoint.extensions)
  if (checkpoint.extensions.length > (state === undefined ? 0 : 1)) throw new LedgerMeshError('bad_signature', 'the checkpoint has extension lines other than its state line, which ledgermesh masters never write')
  const [signed] = verifyNote(note, masterKeys.map(publicKey => cosignerKey(origin, publicKey)))
  const sig = note.signatures.find(s => s.name === origin && s.keyId === keyId(origin, SIG_COSIGNATURE_V1, signed.verifier.publicKey))!
  return {
    seq: checkpoint.size,
    root: checkpoint.root.toString('hex'),
    origin,
    time: new Date(signed.timestamp! * 1000).toISOString(),
    publicKey: signed.verifier.publicKey,
    signature: sig.bytes.subarray(8).toString('hex'),
    ...(state === undefined ? {} : { state: { size: state.size, root: state.root.toString('hex') } })
  }
}

/** The head as a C2SP signed note: the checkpoint and the master's signature line. */
export function headNote (head: SignedHead): string {
  return formatNote({
    text: checkpointText(head),
    signatures: [{ name: head.origin, keyId: keyId(head.origin, SIG_COSIGNATURE_V1, head.publicKey), bytes: timestampedSignature(timestampOf(head.time) ?? 0, head.signature) }]
  })
}
