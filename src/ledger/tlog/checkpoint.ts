import { LedgerMeshError } from '../../base/errors.js'
import { HASH_SIZE } from './rfc6962.js'

/**
 * C2SP tlog checkpoints (c2sp.org/tlog-checkpoint@v1.0.0): the text of a signed note made of
 * the log's origin, its tree size and the base64 root hash, one per line. ledgermesh writes
 * no extension lines (they are not auditable); it reads and keeps any it is given.
 */
export interface Checkpoint {
  origin: string
  size: number
  root: Buffer
  extensions: string[]
}

const bad = (message: string): LedgerMeshError => new LedgerMeshError('bad_signature', `checkpoint: ${message}`)

export function formatCheckpoint (c: Checkpoint): string {
  return [c.origin, String(c.size), c.root.toString('base64'), ...c.extensions].join('\n') + '\n'
}

export function parseCheckpoint (text: string): Checkpoint {
  if (!text.endsWith('\n')) throw bad('the text does not end with a newline')
  const lines = text.slice(0, -1).split('\n')
  if (lines.length < 3) throw bad(`expected origin, tree size and root hash lines, found ${lines.length} line(s)`)
  const [origin, size, root, ...extensions] = lines
  if (origin === '') throw bad('the origin line is empty')
  if (!/^(0|[1-9][0-9]*)$/.test(size) || !Number.isSafeInteger(Number(size))) throw bad(`tree size ${JSON.stringify(size.slice(0, 30))} is not a decimal number without leading zeros`)
  const hash = Buffer.from(root, 'base64')
  if (hash.length !== HASH_SIZE || hash.toString('base64') !== root) throw bad(`root ${JSON.stringify(root.slice(0, 60))} is not the base64 of a ${HASH_SIZE}-byte hash`)
  if (extensions.some(line => line === '')) throw bad('an extension line is empty')
  return { origin, size: Number(size), root: hash, extensions }
}
