import protobuf from 'protobufjs'
import { MAX_ENTRIES, MAX_IDS, WIRE_VERSION } from './constants.js'
import { decodeOutcome, decodeWire, encodeOutcome, malformed, type Outcome } from '../../net/wire.js'

/**
 * The light protocol's two messages (proto3, read by protobufjs reflection). A light worker
 * names the policies it wants (by id) and/or asks for what worker `worker` needs; the server
 * answers with its checkpoint (the signed note, whole: the master's signature and any witness
 * cosignatures) and, per policy it holds, the entry's bytes and the audit path to that
 * checkpoint's root. What it does not hold live (deleted, unknown, or past its checkpoint) is
 * listed in `missing`.
 */
export const LIGHT_PROTO = `
syntax = "proto3";
package ledgermesh.light;

message LightRequest {
  uint32 version = 1;            // WIRE_VERSION
  string worker = 2;             // '' or a worker's NODE_NAME: add the policies it needs
  repeated string ids = 3;       // policy ids wanted (64 hex each)
}

message LightEntry {
  string entry = 1;              // the entry's bytes: <prev_hash>:<seq>:{"op":"put","policy":...}
  repeated bytes proof = 2;      // RFC 6962 audit path to the checkpoint's root
}

message LightResponse {
  bool ok = 1;
  string checkpoint = 2;         // the server's signed checkpoint (C2SP signed note)
  repeated LightEntry entries = 3;
  repeated string missing = 4;   // ids asked for that the server holds no live policy of at its checkpoint
  string error_code = 5;
  string error_message = 6;
}
`

const root = protobuf.parse(LIGHT_PROTO, { keepCase: true }).root
export const LightRequestType = root.lookupType('ledgermesh.light.LightRequest')
export const LightResponseType = root.lookupType('ledgermesh.light.LightResponse')
const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, defaults: true, arrays: true }

export interface LightRequest {
  version: number
  worker: string
  ids: string[]
}

export interface LightResponse extends Outcome {
  checkpoint: string
  entries: Array<{ entry: string, proof: Uint8Array[] }>
  missing: string[]
}

const POLICY_ID = /^[0-9a-f]{64}$/

export function encodeLightRequest (req: LightRequest): Uint8Array {
  return LightRequestType.encode(LightRequestType.fromObject(req)).finish()
}

export function decodeLightRequest (data: Uint8Array): LightRequest {
  const o = decodeWire<LightRequest>(LightRequestType, data, 'light request', TO_OBJECT)
  if (o.version !== WIRE_VERSION) throw malformed('light request', `wire version ${o.version} is not supported (this node speaks ${WIRE_VERSION})`)
  if (o.worker.length > 128) throw malformed('light request', 'worker must be a name of at most 128 characters')
  if (o.ids.length > MAX_IDS) throw malformed('light request', `more than ${MAX_IDS} policy ids`)
  if (o.ids.some(id => !POLICY_ID.test(id))) throw malformed('light request', 'ids holds something that is not a policy id (64 lower-case hex digits)')
  if (o.worker === '' && o.ids.length === 0) throw malformed('light request', 'it asks for nothing: name a worker or policy ids')
  return o
}

export function encodeLightResponse (res: LightResponse): Uint8Array {
  return LightResponseType.encode(LightResponseType.fromObject({ ...encodeOutcome(res), checkpoint: res.checkpoint, entries: res.entries, missing: res.missing })).finish()
}

export function decodeLightResponse (data: Uint8Array): LightResponse {
  const o = decodeWire<{ ok: boolean, checkpoint: string, entries: Array<{ entry: string, proof: Uint8Array[] }>, missing: string[], error_code: string, error_message: string }>(LightResponseType, data, 'light response', TO_OBJECT)
  if (o.entries.length > MAX_ENTRIES) throw malformed('light response', `more than ${MAX_ENTRIES} policies`)
  if (o.missing.length > MAX_IDS) throw malformed('light response', `more than ${MAX_IDS} missing ids`)
  if (o.ok && o.checkpoint === '') throw malformed('light response', 'an answer without a checkpoint')
  return { ...decodeOutcome(o, 'light response'), checkpoint: o.checkpoint, entries: o.entries.map(e => ({ entry: e.entry, proof: e.proof })), missing: o.missing }
}

/** The four codecs, as the protocol skeleton takes them. */
export const LIGHT_CODEC = {
  encodeRequest: encodeLightRequest,
  decodeRequest: decodeLightRequest,
  encodeResponse: encodeLightResponse,
  decodeResponse: decodeLightResponse
}
