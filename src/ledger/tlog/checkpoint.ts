import { LedgerMeshError } from '../../base/errors.js'
import { HASH_SIZE } from './rfc6962.js'

/**
 * C2SP tlog checkpoints (c2sp.org/tlog-checkpoint@v1.0.0): the text of a signed note made of
 * the log's origin, its tree size and the base64 root hash, one per line. ledgermesh writes
 * one extension line, the state commitment (see stateLine); it reads and keeps any it is given.
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

/**
 * The state commitment as a checkpoint extension line: `state <live policies> <base64 root>`,
 * the root of the live state's sparse Merkle tree (src/ledger/state-tree) at the checkpoint's
 * size. An extension line, not a second signed note: one master signature and one witness
 * round (cosignature/v1 signs the extension lines with the rest) bind the log root and the
 * state root of the same size together, and tools that know only C2SP checkpoints still check
 * the first three lines and ignore it.
 */
export interface StateLine { size: number, root: Buffer }

const STATE_LINE = /^state (0|[1-9][0-9]*) ([A-Za-z0-9+/]{43}=)$/

export function formatStateLine (state: StateLine): string {
  return `state ${state.size} ${state.root.toString('base64')}`
}

/** The state line among a checkpoint's extension lines: undefined when there is none. */
export function parseStateLine (extensions: readonly string[]): StateLine | undefined {
  const lines = extensions.filter(line => line.startsWith('state '))
  if (lines.length === 0) return undefined
  if (lines.length > 1) throw bad('more than one state line')
  const match = STATE_LINE.exec(lines[0])
  const root = match === null ? undefined : Buffer.from(match[2], 'base64')
  if (match === null || root === undefined || root.length !== HASH_SIZE || root.toString('base64') !== match[2] || !Number.isSafeInteger(Number(match[1]))) {
    throw bad(`the state line ${JSON.stringify(lines[0].slice(0, 80))} is not \`state <live policies> <base64 root>\``)
  }
  return { size: Number(match[1]), root }
}
