import protobuf from 'protobufjs'
import { MAX_BOOT_LENGTH, MAX_RUNNING, WIRE_VERSION } from './constants.js'
import { decodeOutcome, decodeWire, encodeOutcome, malformed } from '../../net/wire.js'
import { MAX_LIGHT_POLICIES } from '../../ledger/light.js'
import type { SignedLeaseAnswer } from './signed-answer.js'

/**
 * The lease protocol's two messages (proto3, read by protobufjs reflection). A worker says
 * which profiles it may be running (a slave: which sub-accounts it runs processes for); the master answers with the lease's terms and the ledger
 * seq the worker's replica must reach before it (re)starts anything.
 */
export const LEASE_PROTO = `
syntax = "proto3";
package ledgermesh.lease;

message LeaseRequest {
  uint32 version = 1;           // WIRE_VERSION
  string worker = 2;            // the worker's NODE_NAME; must match the peer id it declared
  repeated string running = 3;  // profile ids (a slave: sub-account ids) whose processes may still run here
  bool draining = 4;            // the worker asked to be drained: move its profiles away
  // Added after 1.0.0 without a version bump (absent = empty): a random id per worker process
  // and that process's renewal counter. The master applies renewals in (boot, seq) order only.
  string boot = 5;
  uint64 seq = 6;
  // Added later, also without a bump: 'worker' (absent or empty) or 'slave'. A slave's lease
  // covers the sub-accounts it runs processes for; worker then holds the slave's NODE_NAME.
  string role = 7;
  // Added later, also without a bump (absent = 0): the node's replica head when it listed
  // running. A unit missing from running at a head past its assignment's delete is
  // stopped for good; the master waits for such a renewal before placing it elsewhere.
  uint64 head = 8;
  // Added later, also without a bump (absent = false): a light worker (LEDGER_MODE=light) asks
  // for a signed answer naming the checkpoint and the policies it needs (LeaseResponse 7-10).
  bool light = 9;
}

message LeaseResponse {
  bool ok = 1;
  uint32 ttl_ms = 2;            // the lease holds this long from when the request was sent
  uint32 grace_ms = 3;          // the master waits this much longer before moving profiles
  uint64 min_seq = 4;           // start nothing before the replica holds this seq
  string error_code = 5;
  string error_message = 6;
  // Added later, also without a bump (absent = empty), only when the request says light: the
  // master's signed checkpoint the answer was made at, the ids of the live policies this
  // worker needs there, the answering master's key and its signature over the canonical
  // encoding of the worker, role, boot, seq, terms, checkpoint and ids (signed-answer.ts).
  string checkpoint = 7;
  repeated string policy_ids = 8;
  string signer = 9;
  string signature = 10;
}
`

const root = protobuf.parse(LEASE_PROTO, { keepCase: true }).root
export const LeaseRequestType = root.lookupType('ledgermesh.lease.LeaseRequest')
export const LeaseResponseType = root.lookupType('ledgermesh.lease.LeaseResponse')
const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, defaults: true, arrays: true }

export interface LeaseRequest {
  version: number
  worker: string
  running: string[]
  draining: boolean
  /** a random id of the worker process (its Operator's start); '' from a worker that predates it */
  boot: string
  /** counts this boot's renewals from 1; 0 when `boot` is '' */
  seq: number
  /** whose lease: a worker's (profiles) or a slave's (sub-accounts); decoded '' is 'worker' */
  role: LeaseRole
  /** the node's replica head seq when it listed `running` (0 from a node that predates it) */
  head?: number
  /** a light worker: answer signed, with the checkpoint and the policies it needs */
  light?: boolean
}

export const LEASE_ROLES = ['worker', 'slave'] as const
export type LeaseRole = typeof LEASE_ROLES[number]

export interface LeaseResponse {
  ok: boolean
  ttlMs: number
  graceMs: number
  minSeq: number
  errorCode: string
  errorMessage: string
  /** a light worker's signed answer (absent from a master that predates it, and for full workers) */
  signed?: SignedLeaseAnswer
}

export function encodeLeaseRequest (req: LeaseRequest): Uint8Array {
  return LeaseRequestType.encode(LeaseRequestType.fromObject(req)).finish()
}

export function decodeLeaseRequest (data: Uint8Array): LeaseRequest {
  const o = decodeWire<Omit<LeaseRequest, 'role'> & { role: string }>(LeaseRequestType, data, 'lease request', TO_OBJECT)
  // a node that predates roles sends none: it is a worker
  const role = o.role === '' ? 'worker' : o.role
  if (!(LEASE_ROLES as readonly string[]).includes(role)) throw malformed('lease request', `role ${JSON.stringify(o.role.slice(0, 32))} is not one of ${LEASE_ROLES.join(', ')}`)
  if (o.version !== WIRE_VERSION) throw malformed('lease request', `wire version ${o.version} is not supported (this node speaks ${WIRE_VERSION})`)
  if (o.worker === '' || o.worker.length > 128) throw malformed('lease request', 'worker must be a name of 1 to 128 characters')
  if (o.running.length > MAX_RUNNING) throw malformed('lease request', `more than ${MAX_RUNNING} running profiles or sub-accounts`)
  if (o.running.some(id => !/^[0-9a-f]{64}$/.test(id))) throw malformed('lease request', 'running holds something that is not a policy id')
  if (o.boot.length > MAX_BOOT_LENGTH) throw malformed('lease request', `boot id longer than ${MAX_BOOT_LENGTH} characters`)
  if (!Number.isSafeInteger(o.seq) || o.seq < 0) throw malformed('lease request', `seq ${String(o.seq)} is not a safe integer`)
  if (!Number.isSafeInteger(o.head ?? 0) || (o.head ?? 0) < 0) throw malformed('lease request', `head ${String(o.head)} is not a safe integer`)
  return { ...o, role: role as LeaseRole }
}

export function encodeLeaseResponse (res: LeaseResponse): Uint8Array {
  return LeaseResponseType.encode(LeaseResponseType.fromObject({
    ...encodeOutcome(res),
    ttl_ms: res.ttlMs,
    grace_ms: res.graceMs,
    min_seq: res.minSeq,
    ...(res.signed === undefined ? {} : { checkpoint: res.signed.checkpoint, policy_ids: res.signed.policyIds, signer: res.signed.signer, signature: res.signed.signature })
  })).finish()
}

export function decodeLeaseResponse (data: Uint8Array): LeaseResponse {
  const o = decodeWire<{ ok: boolean, ttl_ms: number, grace_ms: number, min_seq: number, error_code: string, error_message: string, checkpoint: string, policy_ids: string[], signer: string, signature: string }>(LeaseResponseType, data, 'lease response', TO_OBJECT)
  if (!Number.isSafeInteger(o.min_seq) || o.min_seq < 0) throw malformed('lease response', `min_seq ${String(o.min_seq)} is not a safe integer`)
  if (o.ok && o.ttl_ms === 0) throw malformed('lease response', 'granted without a ttl')
  if (o.policy_ids.length > MAX_LIGHT_POLICIES) throw malformed('lease response', `more than ${MAX_LIGHT_POLICIES} policy ids`)
  if (o.policy_ids.some(id => !/^[0-9a-f]{64}$/.test(id))) throw malformed('lease response', 'policy_ids holds something that is not a policy id')
  if (o.signer !== '' && (!/^[0-9a-f]{64}$/.test(o.signer) || !/^[0-9a-f]{128}$/.test(o.signature) || o.checkpoint === '')) throw malformed('lease response', 'a signed answer needs a checkpoint, a 64-hex signer and a 128-hex signature')
  const signed = o.signer === '' ? undefined : { checkpoint: o.checkpoint, policyIds: o.policy_ids, signer: o.signer, signature: o.signature }
  return { ...decodeOutcome(o, 'lease response'), ttlMs: o.ttl_ms, graceMs: o.grace_ms, minSeq: o.min_seq, ...(signed === undefined ? {} : { signed }) }
}

/** The four codecs, as the protocol skeleton takes them. */
export const LEASE_CODEC = {
  encodeRequest: encodeLeaseRequest,
  decodeRequest: decodeLeaseRequest,
  encodeResponse: encodeLeaseResponse,
  decodeResponse: decodeLeaseResponse
}
