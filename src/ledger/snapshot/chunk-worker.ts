/**
 * A snapshot-chunk thread (see chunk-checker.ts): checks each chunk it is sent exactly as the
 * main thread would (checkChunkAgainst) and answers the chain hash and Merkle leaf hash of each
 * entry, in the bundle's order, 64 bytes apiece; or the refusal's message and code.
 */
import { parentPort } from 'node:worker_threads'
import { LedgerMeshError, errorMessage } from '../../base/errors.js'
import { entryLeafHash } from '../entry.js'
import { type ChunkSpec, checkChunkAgainst } from './manifest.js'

export interface ChunkRequest { id: number, spec: ChunkSpec, size: number, bundle: Uint8Array }
/** `code` is the error's (snapshot_refused when the chunk is wrong; anything else is this thread's own failure) */
export type ChunkAnswer = { id: number, hashes: Uint8Array } | { id: number, error: string, code?: string }

parentPort!.on('message', ({ id, spec, size, bundle }: ChunkRequest) => {
  try {
    const entries = checkChunkAgainst(spec, size, bundle)
    const buffer = new ArrayBuffer(entries.length * 64)
    const hashes = new Uint8Array(buffer)
    const view = Buffer.from(buffer)
    entries.forEach((entry, i) => {
      view.write(entry.hash, i * 64, 32, 'hex')
      hashes.set(entryLeafHash(entry), i * 64 + 32)
    })
    // handed over, not copied
    parentPort!.postMessage({ id, hashes } satisfies ChunkAnswer, [buffer])
  } catch (err) {
    parentPort!.postMessage({ id, error: errorMessage(err), code: err instanceof LedgerMeshError ? err.code : undefined } satisfies ChunkAnswer)
  }
})
