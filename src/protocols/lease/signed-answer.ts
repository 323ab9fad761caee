import { LedgerMeshError } from '../../base/errors.js'
import { canonicalJson } from '../../policies/canonical.js'
import { type Signer, verifySignature } from '../../policies/keys.js'

/**
 * A lease answer a master signs for a light worker (LeaseRequest.light): the checkpoint it was
 * made at and the live policies this worker needs there (its assignments and their profiles,
 * its declaration, its slave's, the master keys: src/ledger/light.ts lightNeeds), bound to the
 * worker's name and to the request's boot and seq, so it cannot be replayed to another worker
 * or to a later renewal. The worker holds exactly that set, each policy proven against a
 * checkpoint, and starts nothing until it does.
 */
export interface SignedLeaseAnswer {
  /** the master's signed checkpoint (C2SP signed note) the answer was made at */
  checkpoint: string
  /** the ids of the live policies the worker needs at that checkpoint, sorted */
  policyIds: string[]
  /** the answering master's Ed25519 key, hex */
  signer: string
  /** hex Ed25519 signature over leaseAnswerPayload */
  signature: string
}

/** The request an answer is bound to (LeaseRequest's fields). */
export interface AnsweredRequest { worker: string, role: string, boot: string, seq: number }

/** The terms a signature covers besides the set. */
export interface LeaseTerms { ttlMs: number, graceMs: number, minSeq: number }

const DOMAIN = 'ledgermesh-lease-answer/v1\n'

/** What the master signs: a domain line, then the canonical JSON of the request's identity, the terms and the set. */
export function leaseAnswerPayload (request: AnsweredRequest, terms: LeaseTerms, answer: Pick<SignedLeaseAnswer, 'checkpoint' | 'policyIds'>): string {
  return DOMAIN + canonicalJson({
    worker: request.worker,
    role: request.role,
    boot: request.boot,
    seq: request.seq,
    ttl_ms: terms.ttlMs,
    grace_ms: terms.graceMs,
    min_seq: terms.minSeq,
    checkpoint: answer.checkpoint,
    policy_ids: answer.policyIds
  })
}

export function signLeaseAnswer (request: AnsweredRequest, terms: LeaseTerms, answer: Pick<SignedLeaseAnswer, 'checkpoint' | 'policyIds'>, signer: Signer): SignedLeaseAnswer {
  const policyIds = [...answer.policyIds].sort()
  return { checkpoint: answer.checkpoint, policyIds, signer: signer.publicKey, signature: signer.sign(leaseAnswerPayload(request, terms, { checkpoint: answer.checkpoint, policyIds })) }
}

/**
 * Throws bad_signature unless `answer` is signed by one of `masterKeys` for exactly this
 * request (worker, role, boot, seq) and these terms.
 */
export function verifyLeaseAnswer (request: AnsweredRequest, terms: LeaseTerms, answer: SignedLeaseAnswer | undefined, masterKeys: readonly string[]): void {
  if (answer === undefined) throw new LedgerMeshError('bad_signature', 'the master\'s lease answer is not signed (a master that predates light workers): a light worker cannot know its assignments are current')
  if (!masterKeys.includes(answer.signer)) throw new LedgerMeshError('bad_signature', `the lease answer is signed by ${answer.signer.slice(0, 16)}…, not a master key this worker trusts`)
  if (!verifySignature(answer.signer, leaseAnswerPayload(request, terms, answer), answer.signature)) {
    throw new LedgerMeshError('bad_signature', `the lease answer's signature does not verify for worker '${request.worker}', boot ${request.boot.slice(0, 8)}…, seq ${request.seq} (changed, or made for another request)`)
  }
}
