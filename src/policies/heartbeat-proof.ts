import { type Signer, verifySignature } from './keys.js'

/**
 * A profile runner's proof, sent with its heartbeats to the slave, that the worker it runs
 * under started it for that profile: the worker's Ed25519 signature over the profile id and
 * the worker's name. The slave checks it against the worker's declared key, so a stranger on
 * the network cannot report a profile as running (or as another worker's) to skew the slave's
 * records. The worker hands it to its runner in HEARTBEAT_PROOF.
 */
const payload = (profileId: string, worker: string): string => `ledgermesh heartbeat v1\n${profileId}\n${worker}`

export function heartbeatProof (signer: Signer, profileId: string, worker: string): string {
  return signer.sign(payload(profileId, worker))
}

export function heartbeatProofHolds (workerKey: string, profileId: string, worker: string, proof: string | undefined): boolean {
  return proof !== undefined && verifySignature(workerKey, payload(profileId, worker), proof)
}
