import type { LengthPrefixedStream } from '@libp2p/utils'
import { LedgerMeshError, toError } from '../../base/errors.js'
import { GENESIS_HASH, entryLeafHash } from '../../ledger/entry.js'
import type { SignedHead } from '../../ledger/head.js'
import type { Ledger } from '../../ledger/ledger.js'
import { verifyConsistency, verifyInclusion } from '../../ledger/tlog/proof.js'
import { WIRE_VERSION } from './constants.js'
import type { ProofAnswer, ProofQuery } from './codec.js'
import { clientError, readResponse, writeRequest } from './client.js'
import type { SyncContext, SyncTarget } from './context.js'

/**
 * Proofs over the sync protocol: a request with `prove` set is answered by one frame holding
 * the proof and the server's signed head, instead of entries. An inclusion proof names an
 * entry's seq (the answer carries the entry), a consistency proof the size it starts from;
 * both are in (to) the tree of the server's checkpoint unless the request names a smaller size.
 */

/** The server's answer to `query` from its ledger; a query it cannot answer throws bad_message naming why. */
export async function answerProof (ledger: Ledger, query: ProofQuery): Promise<{ proof: ProofAnswer, head: SignedHead }> {
  const head = ledger.signedHead
  if (head === undefined) throw new LedgerMeshError('bad_message', 'this node holds no signed checkpoint yet: no proof can be made')
  const size = query.size === 0 ? head.seq : query.size
  if (size > head.seq) throw new LedgerMeshError('bad_message', `tree size ${size} is past this node's checkpoint (${head.seq})`)
  if (query.seq > 0) {
    if (query.seq > size) throw new LedgerMeshError('bad_message', `entry ${query.seq} is not in the tree of ${size} entries`)
    const [entry] = await ledger.store.range(query.seq, 1)
    if (entry === undefined || entry.seq !== query.seq) throw new LedgerMeshError('bad_message', `entry ${query.seq} is not in this node's store`)
    return { proof: { size, hashes: ledger.tree.inclusionProof(query.seq - 1, size), entry }, head }
  }
  if (query.first > size) throw new LedgerMeshError('bad_message', `no consistency proof goes from size ${query.first} to ${size}`)
  return { proof: { size, hashes: ledger.tree.consistencyProof(query.first, size) }, head }
}

/** What a proof request verified: the source's signed head, and the proof against its root. */
export interface ProvedAnswer {
  head: SignedHead
  proof: ProofAnswer
}

/**
 * Asks `target` for a proof in (to) the tree of its signed checkpoint and checks it: the head
 * must be signed by a master key this ledger trusts; an inclusion proof must lead from the
 * entry it carries (its seq the one asked for) to the head's root; a consistency proof must
 * lead from this ledger's own root at `first` (a size it holds) to the head's root. Throws
 * bad_signature or bad_message naming what does not hold.
 */
export async function requestProof (ctx: SyncContext, target: SyncTarget, query: { seq: number } | { first: number }): Promise<ProvedAnswer> {
  const { ledger } = ctx.components
  const wanted: ProofQuery = 'seq' in query ? { seq: query.seq, first: 0, size: 0 } : { seq: 0, first: query.first, size: 0 }
  if (wanted.seq === 0 && wanted.first > ledger.tree.size) throw new LedgerMeshError('bad_command', `a consistency proof from size ${wanted.first}: this node's tree has only ${ledger.tree.size} entries`)
  const signal = ctx.deadline()
  const { stream, release } = await ctx.open(target, signal)
  let answer: { proof?: ProofAnswer, head?: SignedHead }
  try {
    const lp: LengthPrefixedStream = ctx.frames(stream)
    await writeRequest(ctx, lp, { version: WIRE_VERSION, afterSeq: 0, afterHash: GENESIS_HASH, limit: 0, watch: false, prove: wanted }, signal)
    answer = await readResponse(ctx, lp, signal)
    await stream.close({ signal }).catch(() => {})
  } catch (err) {
    stream.abort(toError(err))
    throw clientError(ctx, err, target, signal)
  } finally {
    release()
  }
  const { proof, head } = answer
  if (proof === undefined || head === undefined) throw new LedgerMeshError('bad_message', `sync source ${target.toString()} answered without a proof and its signed head (a node that predates proofs over sync)`)
  ledger.checkSignedHead(head)
  if (proof.size !== head.seq) throw new LedgerMeshError('bad_message', `the proof is for a tree of ${proof.size} entries, the source's checkpoint has ${head.seq}`)
  const root = Buffer.from(head.root, 'hex')
  let why: string | undefined
  if (wanted.seq > 0) {
    if (proof.entry?.seq !== wanted.seq) throw new LedgerMeshError('bad_message', `asked for entry ${wanted.seq}, the answer carries ${proof.entry?.seq ?? 'none'}`)
    why = verifyInclusion(entryLeafHash(proof.entry), wanted.seq - 1, proof.size, proof.hashes, root)
  } else {
    why = verifyConsistency(wanted.first, proof.size, proof.hashes, ledger.tree.root(wanted.first), root)
  }
  if (why !== undefined) throw new LedgerMeshError('bad_signature', `the proof from ${target.toString()} does not verify: ${why}`)
  return { head, proof }
}
