/**
 * `/ledgermesh/lease/1.0.0`: workers renew leases with the master, outside the ledger.
 *
 * ```ts
 * const lease = new LeaseProtocol({ libp2p, log })
 * await lease.serve(allocator.renewLease)           // on the master
 * const grant = await lease.renew(masterAddr, { worker: 'w1', running: [...], draining: false, boot, seq })
 * ```
 */
export { LeaseProtocol, type LeaseComponents, type LeaseInit, type LeaseGrant, type LeaseGrantor } from './lease.js'
export { LEASE_PROTOCOL, WIRE_VERSION, TIMEOUT_MS } from './constants.js'
export { LEASE_PROTO, encodeLeaseRequest, decodeLeaseRequest, encodeLeaseResponse, decodeLeaseResponse, type LeaseRequest, type LeaseResponse, type LeaseRole, LEASE_ROLES } from './messages.js'
export { type SignedLeaseAnswer, type LeaseTerms, leaseAnswerPayload, signLeaseAnswer, verifyLeaseAnswer } from './signed-answer.js'
