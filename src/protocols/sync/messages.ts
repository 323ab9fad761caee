import protobuf from 'protobufjs'

/**
 * The sync protocol's messages (proto3, read by protobufjs reflection: no generated code).
 *
 * A client sends one SyncRequest. The server answers with SyncResponse frames: zero or more
 * frames of entries, then a frame carrying its master-signed head, which ends a run. A client
 * applies a run only once a signed head covers it exactly. In watch mode the stream stays
 * open and the server sends a new run (entries + head) after each append, and the head alone
 * as a keepalive. An error frame (error_code set) is the last frame of a stream.
 *
 * Sessions (fields 6 and 7, added within wire version 1: a peer that does not know them
 * ignores them and behaves as before). A client that sets keep_open may send its next
 * request on the same stream once a run has ended with open = true (a server that leaves
 * open false, or an older one, closes the stream as before). A client that sets holds_head
 * holds, verified, a master-signed head at exactly after_seq/after_hash: when that is still
 * the server's signed head, the server answers current_seq = after_seq (and no head) instead
 * of re-sending the head, and a watch's keepalives are current_seq frames too.
 *
 * Hashes, keys and signatures travel as raw bytes (32, 32 and 64), policies as their
 * canonical JSON (UTF-8), so a probe-sized entry costs about 440 bytes on the wire.
 */
export const SYNC_PROTO = `
syntax = "proto3";
package ledgermesh.sync;

message SyncRequest {
  uint32 version = 1;      // WIRE_VERSION; a server refuses others (unsupported_version)
  uint64 after_seq = 2;    // the client's head: send entries after it
  bytes after_hash = 3;    // its hash (32 bytes), so the server can tell a diverged replica
  uint32 limit = 4;        // most entries before a head frame (0: only the head)
  bool watch = 5;          // keep the stream open and push new entries as they are appended
  bool keep_open = 6;      // the client would send its next request on this stream (see open)
  bool holds_head = 7;     // the client holds a master-signed head at after_seq/after_hash (see current_seq)
  ProofRequest prove = 8;  // instead of entries: one frame with this proof and the server's signed head, then the stream closes
}

// Proofs (added within wire version 1: a server that does not know field 8 answers entries,
// which the client takes as "no proofs here").
message ProofRequest {
  uint64 seq = 1;          // an inclusion proof of the entry at this seq; 0: a consistency proof
  uint64 first = 2;        // a consistency proof from the tree of this size
  uint64 size = 3;         // in (to) the tree of this size; 0: the server's signed checkpoint's
}

message ProofAnswer {
  uint64 size = 1;         // the tree size the proof is in (to)
  repeated bytes hashes = 2;  // RFC 6962 audit path or consistency proof, 32 bytes each
  WireEntry entry = 3;     // an inclusion proof's entry (its leaf is SHA-256(0x00 || entry bytes))
}

message WireEntry {
  enum Op {
    PUT = 0;
    DELETE = 1;
  }
  uint64 seq = 1;
  Op op = 2;
  bytes policy = 3;        // canonical JSON, UTF-8
  bytes prev_hash = 4;     // 32 bytes
  bytes hash = 5;          // 32 bytes
}

message WireHead {
  uint64 seq = 1;
  bytes hash = 2;          // 32 bytes
  string time = 3;         // when the master signed it, ISO-8601
  bytes public_key = 4;    // the master's Ed25519 key, 32 bytes
  bytes signature = 5;     // 64 bytes: the master's signature of the checkpoint (cosignature/v1 at time)
  bytes root = 6;          // the RFC 6962 Merkle root of the first seq entries, 32 bytes
  string origin = 7;       // the checkpoint's origin line
  bytes state_root = 8;    // the live state's sparse Merkle root, 32 bytes (empty: a head signed without one)
  uint64 state_size = 9;   // how many policies are live at seq
}

message SyncResponse {
  repeated WireEntry entries = 1;
  WireHead head = 2;       // ends a run: the entries so far lead up to it (or to more, below)
  bool more = 3;           // the server stopped at the limit before reaching this head
  string error_code = 4;   // unsupported_version, diverged, bad_message, timeout, internal
  string error_message = 5;
  bool open = 6;           // on the frame that ends a run: the server reads another request on this stream
  uint64 current_seq = 7;  // instead of a head: the head the client holds (holds_head) is still this server's
  ProofAnswer proof = 8;   // the answer to a request's prove, with the server's signed head
}
`

const root = protobuf.parse(SYNC_PROTO, { keepCase: true }).root

export const SyncRequestType = root.lookupType('ledgermesh.sync.SyncRequest')
export const WireEntryType = root.lookupType('ledgermesh.sync.WireEntry')
export const WireHeadType = root.lookupType('ledgermesh.sync.WireHead')
export const SyncResponseType = root.lookupType('ledgermesh.sync.SyncResponse')
export const ProofAnswerType = root.lookupType('ledgermesh.sync.ProofAnswer')

/** `Type.toObject` options: uint64 as number (the codec checks for safe integers), enums by name, bytes as Uint8Array (Buffer), defaults filled in. */
export const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true, arrays: true }

/** A decoded SyncRequest as `toObject` returns it (before the codec checks it). */
export interface WireSyncRequest {
  version: number
  after_seq: number
  after_hash: Uint8Array
  limit: number
  watch: boolean
  keep_open: boolean
  holds_head: boolean
  prove?: { seq: number, first: number, size: number } | null
}

export interface WireEntry {
  seq: number
  /** 'PUT' | 'DELETE', or the number of an op this version does not know */
  op: string | number
  policy: Uint8Array
  prev_hash: Uint8Array
  hash: Uint8Array
}

export interface WireHead {
  seq: number
  hash: Uint8Array
  time: string
  public_key: Uint8Array
  signature: Uint8Array
  root: Uint8Array
  origin: string
}

export interface WireSyncResponse {
  entries: WireEntry[]
  head?: WireHead | null
  more: boolean
  error_code: string
  error_message: string
  open: boolean
  current_seq: number
  proof?: { size: number, hashes: Uint8Array[], entry?: WireEntry | null } | null
}
