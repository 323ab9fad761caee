import { LedgerMeshError } from '../../base/errors.js'
import type { Ledger } from '../../ledger/ledger.js'
import { lightNeeds } from '../../ledger/light.js'
import { checkpointNote } from '../../ledger/proofs.js'
import type { Signer } from '../../policies/keys.js'
import { type LeaseGrant, type LeaseRequest, signLeaseAnswer } from '../../protocols/lease/index.js'

/**
 * A light worker's grant: made at the master's signed checkpoint (minSeq is its size), naming
 * the live policies the worker needs there (lightNeeds), signed by this master for exactly
 * this request (signed-answer.ts), the checkpoint's note with the witnesses' cosignatures when
 * the latest witnessed checkpoint is this one. The state and the checkpoint are read together, with no
 * await between them, so the set is the one at that checkpoint.
 */
export function lightGrant (ledger: Ledger, request: LeaseRequest, terms: { ttlMs: number, graceMs: number }, signer: Signer, witnessed?: { size: number, note: string }): LeaseGrant {
  const head = ledger.signedHead
  if (head === undefined) throw new LedgerMeshError('not_found', 'this master holds no signed checkpoint yet: no answer a light worker can check')
  // the note whole: with the witnesses' cosignatures when the latest witnessed checkpoint is this one
  const checkpoint = witnessed !== undefined && witnessed.size === head.seq ? witnessed.note : checkpointNote(ledger)
  const policyIds = lightNeeds(ledger.state, request.worker)
  const grant = { ...terms, minSeq: head.seq }
  return { ...grant, signed: signLeaseAnswer(request, grant, { checkpoint, policyIds }, signer) }
}
