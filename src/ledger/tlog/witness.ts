import { Mutex } from 'async-mutex'
import type { Signer } from '../../policies/keys.js'
import { type Checkpoint, parseCheckpoint } from './checkpoint.js'
import { type NoteVerifier, SIG_COSIGNATURE_V1, formatNote, parseNote, signNote, verifyNote } from './note.js'
import { verifyConsistency } from './proof.js'
import { EMPTY_ROOT, HASH_SIZE } from './rfc6962.js'

/**
 * A checkpoint witness (c2sp.org/tlog-witness, `add-checkpoint`): it cosigns a log's
 * checkpoint only when a consistency proof links it to the last checkpoint it cosigned for
 * that origin, so a log that shows two histories is caught by whoever holds both
 * cosignatures, and a witness never signs the second. Its cosignature is the timestamped
 * Ed25519 type (cosignature/v1).
 */
export interface WitnessRecord {
  size: number
  /** base64 root */
  root: string
  /** the checkpoint note it cosigned */
  note: string
}

/** Two checkpoints of one origin, both signed by the log, that no consistency proof links. */
export interface ForkEvidence {
  origin: string
  cosigned: string
  presented: string
  reason: string
}

export interface WitnessOptions {
  /** the witness's key name (a schema-less URL, as C2SP recommends) */
  name: string
  signer: Signer
  /** the log keys the witness trusts for an origin; undefined: an origin it does not witness */
  logKeys: (origin: string) => NoteVerifier[] | undefined
  load: (origin: string) => Promise<WitnessRecord | undefined>
  /** persisted before the cosignature is returned */
  save: (origin: string, record: WitnessRecord) => Promise<void>
  onFork: (evidence: ForkEvidence) => void
  /**
   * An additional statement the witness makes (c2sp.org/tlog-cosignature lets a cosigner's
   * operator say what it checks beyond the first three lines): called for a checkpoint that is
   * consistent with the last one cosigned; a refusal it answers is returned instead of a
   * cosignature (e.g. 422 when an extension line is wrong, 503 when it cannot tell yet).
   */
  checkExtensions?: (checkpoint: Checkpoint) => Promise<{ status: number, reason: string } | undefined>
}

export interface WitnessReply { status: number, body: string, contentType: string }

const MAX_PROOF_LINES = 63
const text = (status: number, body: string): WitnessReply => ({ status, body: body.endsWith('\n') ? body : `${body}\n`, contentType: 'text/plain; charset=utf-8' })

export class Witness {
  /** check and persist are one step per witness (the race the specification describes) */
  private readonly lock = new Mutex()

  constructor (private readonly opts: WitnessOptions) {}

  get name (): string { return this.opts.name }

  async addCheckpoint (body: string): Promise<WitnessReply> {
    const blank = body.indexOf('\n\n')
    if (blank < 0) return text(400, 'expected an old size line, proof lines, an empty line and a checkpoint')
    const head = body.slice(0, blank).split('\n')
    const old = /^old (0|[1-9][0-9]*)$/.exec(head[0])
    if (old === null || !Number.isSafeInteger(Number(old[1]))) return text(400, 'the first line must be `old <size>`')
    const oldSize = Number(old[1])
    const proofLines = head.slice(1)
    if (proofLines.length > MAX_PROOF_LINES) return text(400, `more than ${MAX_PROOF_LINES} consistency proof lines`)
    const proof = proofLines.map(line => Buffer.from(line, 'base64'))
    if (proof.some((h, i) => h.length !== HASH_SIZE || h.toString('base64') !== proofLines[i])) return text(400, 'a consistency proof line is not a base64 hash')
    const noteText = body.slice(blank + 2)
    let checkpoint
    let note
    try {
      note = parseNote(noteText)
      checkpoint = parseCheckpoint(note.text)
    } catch (err) {
      return text(400, (err as Error).message)
    }
    const keys = this.opts.logKeys(checkpoint.origin)
    if (keys === undefined) return text(404, `unknown log origin ${checkpoint.origin}`)
    try {
      verifyNote(note, keys)
    } catch (err) {
      return text(403, (err as Error).message)
    }
    if (oldSize > checkpoint.size) return text(400, `old size ${oldSize} is beyond the checkpoint's ${checkpoint.size}`)
    return await this.lock.runExclusive(async () => {
      const last = await this.opts.load(checkpoint.origin)
      const lastSize = last?.size ?? 0
      if (oldSize !== lastSize) return { status: 409, body: `${lastSize}\n`, contentType: 'text/x.tlog.size' }
      if (checkpoint.size === 0 && !checkpoint.root.equals(EMPTY_ROOT)) return text(422, 'a checkpoint of size 0 must have the empty tree\'s root')
      let why: string | undefined
      if (last === undefined || oldSize === 0) {
        if (proof.length > 0) return text(422, 'a proof from size 0 is empty')
      } else {
        why = verifyConsistency(oldSize, checkpoint.size, proof, Buffer.from(last.root, 'base64'), checkpoint.root)
      }
      if (why !== undefined) {
        // the log signed both: only a consistency proof could link them, and this one does not
        if (last !== undefined && (oldSize === checkpoint.size || proof.length > 0)) {
          this.opts.onFork({ origin: checkpoint.origin, cosigned: last.note, presented: noteText, reason: why })
        }
        return text(422, why)
      }
      const refused = await this.opts.checkExtensions?.(checkpoint)
      if (refused !== undefined) return text(refused.status, refused.reason)
      await this.opts.save(checkpoint.origin, { size: checkpoint.size, root: checkpoint.root.toString('base64'), note: noteText })
      const cosignature = signNote(note.text, this.opts.name, this.opts.signer, SIG_COSIGNATURE_V1)
      // the signature line alone: what the note's signature lines look like after the blank line
      const line = formatNote({ text: '', signatures: [cosignature] }).slice(1)
      return { status: 200, body: line, contentType: 'text/plain; charset=utf-8' }
    })
  }
}
