import { createHash } from 'node:crypto'
import { LedgerMeshError } from '../../base/errors.js'
import { verifySignature, type Signer } from '../../policies/keys.js'

/**
 * C2SP signed notes (c2sp.org/signed-note@v1.0.0): text ending in a newline, a blank line,
 * then lines `— <key name> base64(4-byte key ID || signature)`. Two signature types are used
 * here, both Ed25519: 0x01, a plain signature over the text (signed-note), and 0x04, a
 * timestamped cosignature over "cosignature/v1\ntime <t>\n" and the text
 * (c2sp.org/tlog-cosignature@v1.0.0), which the master and the witnesses make.
 */
export const SIG_ED25519 = 0x01
export const SIG_COSIGNATURE_V1 = 0x04
export type SignatureType = typeof SIG_ED25519 | typeof SIG_COSIGNATURE_V1

/** Verifiers must accept at least 16 signatures; more than this many is refused. */
export const MAX_NOTE_SIGNATURES = 64
export const MAX_NOTE_BYTES = 64 * 1024
const DASH = '\u2014 '

export interface NoteSignature {
  name: string
  keyId: number
  /** the bytes after the key ID: 64 (0x01) or 8 + 64 (0x04: timestamp, signature) */
  bytes: Buffer
}

export interface Note {
  /** the signed text, its final newline included */
  text: string
  signatures: NoteSignature[]
}

/** A key a verifier knows: name, type and Ed25519 public key (hex). */
export interface NoteVerifier {
  name: string
  type: SignatureType
  publicKey: string
}

const bad = (message: string): LedgerMeshError => new LedgerMeshError('bad_signature', `signed note: ${message}`)

export function checkKeyName (name: string): void {
  if (name === '' || /[\s+]/u.test(name)) throw bad(`key name ${JSON.stringify(name)} must be non-empty, without spaces or '+'`)
}

/** key ID = SHA-256(name || 0x0A || type || public key)[:4], big-endian. */
export function keyId (name: string, type: SignatureType, publicKeyHex: string): number {
  return createHash('sha256').update(name).update(Buffer.from([0x0a, type])).update(Buffer.from(publicKeyHex, 'hex')).digest().readUInt32BE(0)
}

/** The message a cosignature v1 signs: its header, its time, the note's text. */
export function cosignedMessage (text: string, timestamp: number): string {
  return `cosignature/v1\ntime ${timestamp}\n${text}`
}

/** A cosigner's key (the timestamped Ed25519 type): a master signing its log's checkpoints, or a witness. */
export function cosignerKey (name: string, publicKey: string): NoteVerifier {
  return { name, type: SIG_COSIGNATURE_V1, publicKey }
}

/** A cosignature's bytes after the key ID: the big-endian uint64 timestamp, then the Ed25519 signature. */
export function timestampedSignature (timestamp: number, signatureHex: string): Buffer {
  const stamp = Buffer.alloc(8)
  stamp.writeBigUInt64BE(BigInt(timestamp))
  return Buffer.concat([stamp, Buffer.from(signatureHex, 'hex')])
}

/** A signature line's part for this key over `text`; with 0x04, at `timestamp` (POSIX seconds). */
export function signNote (text: string, name: string, signer: Signer, type: SignatureType, timestamp?: number): NoteSignature {
  checkKeyName(name)
  const id = keyId(name, type, signer.publicKey)
  if (type === SIG_ED25519) return { name, keyId: id, bytes: Buffer.from(signer.sign(text), 'hex') }
  const time = timestamp ?? Math.floor(Date.now() / 1000)
  return { name, keyId: id, bytes: timestampedSignature(time, signer.sign(cosignedMessage(text, time))) }
}

export function formatNote (note: Note): string {
  const lines = note.signatures.map(s => {
    const head = Buffer.alloc(4)
    head.writeUInt32BE(s.keyId)
    return `${DASH}${s.name} ${Buffer.concat([head, s.bytes]).toString('base64')}\n`
  })
  return `${note.text}\n${lines.join('')}`
}

/** Parses a signed note strictly; the text is not to be trusted until a signature is verified. */
export function parseNote (raw: string): Note {
  if (Buffer.byteLength(raw) > MAX_NOTE_BYTES) throw bad(`longer than ${MAX_NOTE_BYTES} bytes`)
  if (/[\u0000-\u0009\u000b-\u001f]/.test(raw)) throw bad('contains a control character other than newline')
  if (!raw.endsWith('\n')) throw bad('does not end with a newline')
  const split = raw.lastIndexOf('\n\n')
  if (split < 0) throw bad('no blank line separates the text from the signatures')
  const text = raw.slice(0, split + 1)
  const lines = raw.slice(split + 2, -1).split('\n')
  if (lines.length > MAX_NOTE_SIGNATURES) throw bad(`more than ${MAX_NOTE_SIGNATURES} signatures`)
  const signatures = lines.map(line => {
    const match = /^\u2014 (\S+) ([A-Za-z0-9+/]+=*)$/u.exec(line)
    if (match === null) throw bad(`signature line ${JSON.stringify(line.slice(0, 80))} is not '— <name> <base64>'`)
    checkKeyName(match[1])
    const bytes = Buffer.from(match[2], 'base64')
    if (bytes.length < 5 || bytes.toString('base64') !== match[2]) throw bad(`the signature of ${match[1]} is not base64 of a key ID and a signature`)
    return { name: match[1], keyId: bytes.readUInt32BE(0), bytes: bytes.subarray(4) }
  })
  return { text, signatures }
}

/**
 * The note's signatures by these keys, verified: signatures of unknown keys (name and key ID
 * not both matching) are ignored; one of a known key that does not verify rejects the note;
 * so does a note no known key signed. Answers, per verifying key, its cosignature time (0x04).
 */
export function verifyNote (note: Note, verifiers: readonly NoteVerifier[]): Array<{ verifier: NoteVerifier, timestamp?: number }> {
  const verified: Array<{ verifier: NoteVerifier, timestamp?: number }> = []
  for (const sig of note.signatures) {
    const verifier = verifiers.find(v => v.name === sig.name && keyId(v.name, v.type, v.publicKey) === sig.keyId)
    if (verifier === undefined) continue
    let ok: boolean
    let timestamp: number | undefined
    if (verifier.type === SIG_ED25519) {
      ok = sig.bytes.length === 64 && verifySignature(verifier.publicKey, note.text, sig.bytes.toString('hex'))
    } else {
      timestamp = sig.bytes.length === 72 ? Number(sig.bytes.readBigUInt64BE(0)) : undefined
      ok = timestamp !== undefined && Number.isSafeInteger(timestamp) && verifySignature(verifier.publicKey, cosignedMessage(note.text, timestamp), sig.bytes.subarray(8).toString('hex'))
    }
    if (!ok) throw bad(`the signature of ${sig.name} (key ${verifier.publicKey.slice(0, 16)}…) does not verify`)
    verified.push({ verifier, ...(timestamp !== undefined ? { timestamp } : {}) })
  }
  if (verified.length === 0) throw bad(`signed by none of the keys it is checked against (${verifiers.map(v => v.name).join(', ') || 'none'})`)
  return verified
}

/** A verifier key as text: `<name>+<hex key ID>+base64(type || public key)`. */
export function formatVkey (v: NoteVerifier): string {
  return `${v.name}+${keyId(v.name, v.type, v.publicKey).toString(16).padStart(8, '0')}+${Buffer.concat([Buffer.from([v.type]), Buffer.from(v.publicKey, 'hex')]).toString('base64')}`
}

export function parseVkey (text: string): NoteVerifier {
  // the name and the key ID hold no '+'; the base64 key may
  const match = /^([^+]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]+=*)$/.exec(text.trim())
  if (match === null) throw bad(`verifier key ${JSON.stringify(text.slice(0, 80))} is not <name>+<8 hex>+<base64>`)
  const [, name, id, key] = match
  checkKeyName(name)
  const bytes = Buffer.from(key, 'base64')
  if (bytes.length !== 33 || (bytes[0] !== SIG_ED25519 && bytes[0] !== SIG_COSIGNATURE_V1)) throw bad(`verifier key ${name}: expected an Ed25519 key of type 0x01 or 0x04`)
  const v: NoteVerifier = { name, type: bytes[0] as SignatureType, publicKey: bytes.subarray(1).toString('hex') }
  if (keyId(v.name, v.type, v.publicKey) !== parseInt(id, 16)) throw bad(`verifier key ${name}: its key ID does not match its key`)
  return v
}
