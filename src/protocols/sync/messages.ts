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
  bytes signature = 5;     // 64 bytes
}

message SyncResponse {
  repeated WireEntry entries = 1;
  WireHead head = 2;       // ends a run: the entries so far lead up to it (or to more, below)
  bool more = 3;           // the server stopped at the limit before reaching this head
  string error_code = 4;   // unsupported_version, diverged, bad_message, timeout, internal
  string error_message = 5;
}
`

const root = protobuf.parse(SYNC_PROTO, { keepCase: true }).root

export const SyncRequestType = root.lookupType('ledgermesh.sync.SyncRequest')
export const WireEntryType = root.lookupType('ledgermesh.sync.WireEntry')
export const WireHeadType = root.lookupType('ledgermesh.sync.WireHead')
export const SyncResponseType = root.lookupType('ledgermesh.sync.SyncResponse')

/** `Type.toObject` options: uint64 as number (the codec checks for safe integers), enums by name, bytes as Uint8Array (Buffer), defaults filled in. */
export const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true, arrays: true }

/** A decoded SyncRequest as `toObject` returns it (before the codec checks it). */
export interface WireSyncRequest {
  version: number
  after_seq: number
  after_hash: Uint8Array
  limit: number
  watch: boolean
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
}

export interface WireSyncResponse {
  entries: WireEntry[]
  head?: WireHead | null
  more: boolean
  error_code: string
  error_message: string
}
