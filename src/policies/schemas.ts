import { z } from 'zod'

/**
 * Schemas of the policy types the network itself understands. Objects are loose: AnyLog
 * users add fields of their own, and they are kept. Unknown types have no schema beyond the
 * one-root-key shape.
 */
const name = z.string().min(1).max(128)
const text = z.string().max(1024)
const port = z.number().int().min(1).max(65535)
const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters')

/** The one algorithm suite of sealed boxes, versions 1 and 2 (see seal.ts). */
export const SEALED_BOX_ALG = 'x25519-hkdf-sha256-xchacha20poly1305'

/** At most this many recipients in one box (version 2): the masters of one network. */
export const MAX_SEAL_RECIPIENTS = 16

const nonce24 = z.string().regex(/^[0-9a-f]{48}$/, 'must be 48 lowercase hex characters (24 bytes)')
// at least the 16-byte tag; standard base64 with padding
const ciphertext = z.string().min(24).regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, 'must be base64')

/** The inside of a sealed box to one key, `{"sealed": <this>}` (see seal.ts for what each field is). */
export const sealedBoxSchema = z.strictObject({
  v: z.literal(1),
  alg: z.literal(SEALED_BOX_ALG),
  to: hex64,
  epk: hex64,
  nonce: nonce24,
  ct: ciphertext
})

/** The inside of a box to several keys (version 2): one ciphertext, its key wrapped once per recipient (seal.ts). */
export const sealedMultiBoxSchema = z.strictObject({
  v: z.literal(2),
  alg: z.literal(SEALED_BOX_ALG),
  keys: z.array(z.strictObject({
    to: hex64,
    epk: hex64,
    nonce: nonce24,
    // the 32-byte content key and its 16-byte tag: 48 bytes, 64 base64 characters
    key: z.string().regex(/^[A-Za-z0-9+/]{64}$/, 'must be 64 base64 characters (a wrapped 32-byte key and its tag)')
  })).min(1).max(MAX_SEAL_RECIPIENTS).refine(keys => new Set(keys.map(k => k.to)).size === keys.length, 'must name each recipient once'),
  nonce: nonce24,
  ct: ciphertext
})

/** A field whose whole value is a sealed box to one key: `{"sealed": {...}}`. */
const sealed = z.strictObject({ sealed: sealedBoxSchema })

const nodeDeclaration = {
  name,
  company: text.optional(),
  hostname: text.optional(),
  ip: text.optional(),
  // AnyLog's name for the address on the node's own network; older ledgers hold internal_ip
  local_ip: text.optional(),
  internal_ip: text.optional(),
  external_ip: text.optional(),
  port: port.optional(),
  rest_port: port.optional(),
  peer_id: text.optional(),
  addrs: z.array(text).max(64).optional(),
  slots: z.number().int().min(0).optional(),
  loc: text.optional(),
  country: text.optional(),
  state: text.optional(),
  city: text.optional()
}

const assignment = z.looseObject({
  profile: name.optional(),
  worker: name.optional(),
  subaccount: name.optional(),
  slave: name.optional(),
  epoch: z.number().int().min(0).optional(),
  // a profile's settings, sealed by the master to the assigned worker's key
  settings: sealed.optional()
}).refine(
  a => (a.profile !== undefined && a.worker !== undefined) || (a.subaccount !== undefined && a.slave !== undefined && a.profile === undefined),
  { message: 'an assignment names either a profile and its worker, or a subaccount and its slave' }
)

/** AnyLog's node types: its node_policy.al declares them, and so does scripts/member.al for NODE_TYPE=operator, .... */
export const ANYLOG_NODE_TYPES = ['operator', 'query', 'publisher', 'generic'] as const

export const SCHEMAS: Record<string, z.ZodType> = {
  // a drain asked of a worker or slave through the ledger (the console's Drain button): the
  // node drains as `worker drain` would, and resumes when the policy is deleted
  drain: z.looseObject({ node: name, reason: text.optional() }),
  master: z.looseObject(nodeDeclaration),
  slave: z.looseObject(nodeDeclaration),
  member: z.looseObject(nodeDeclaration),
  // AnyLog's operator adds cluster, member, main...: kept (loose)
  ...Object.fromEntries(ANYLOG_NODE_TYPES.map(type => [type, z.looseObject(nodeDeclaration)])),
  worker: z.looseObject({
    ...nodeDeclaration,
    slave: name.optional(),
    profile_kinds: z.array(z.string().min(1).max(64)).max(64).optional()
  }),
  subaccount: z.looseObject({ name, account: text, slave: name.optional() }),
  profile: z.looseObject({
    name,
    kind: z.string().min(1).max(64),
    subaccount: name,
    // sealed to the master's key (see sealed-settings.ts); the master refuses plain settings
    // in new profiles, and replicas still accept the plain ones older ledgers hold
    settings: z.record(z.string(), z.unknown()).optional()
  }),
  assignment,
  admin: z.looseObject({ name, key: hex64 }),
  // Admission control (see admission.ts): written by the master (or an admin) only.
  // A network policy says whether admission is required, or which witnesses cosign the log's
  // checkpoints and how many must (see docs/verifiable-log.md): one of the two per policy.
  network: z.looseObject({
    admission: z.enum(['required', 'open']).optional(),
    witnesses: z.array(z.object({ key: hex64, address: z.string().min(3).max(300) })).min(1).max(64).optional(),
    witness_quorum: z.number().int().min(1).max(64).optional()
  }).refine(n => (n.admission === undefined) !== (n.witnesses === undefined), { message: 'a network policy names either admission or witnesses' })
    .refine(n => n.witnesses === undefined ? n.witness_quorum === undefined : n.witness_quorum !== undefined && n.witness_quorum <= n.witnesses.length, { message: 'witness_quorum must be from 1 to the number of witnesses, and only with witnesses', path: ['witness_quorum'] }),
  admission: z.looseObject({ key: hex64, name: name.optional(), token: z.string().regex(/^[0-9a-f]{16}$/).optional(), via: z.enum(['join_token', 'admin']) }),
  revocation: z.looseObject({ key: hex64, reason: text.optional() }),
  // Several masters over one database: a trusted master (or an admin) declares another
  // master's key; replicas then trust heads that key signs (ledger-rules.ts trustedMasterKeys).
  master_key: z.looseObject({ key: hex64, name: name.optional() }),
  // A profile's settings re-sealed by a trusted master to another master's key, for profiles
  // sealed before that key was trusted (src/services/settings-copies.ts); masters only.
  settings_copy: z.looseObject({ profile: name, profile_id: hex64, master_key: hex64, settings: sealed })
    .refine(c => c.settings.sealed.to === c.master_key, { message: 'a settings copy\'s box must be sealed to its master_key', path: ['settings'] }),
  // A master whose wrapped key in a profile's box does not open asks the active master for a
  // copy (written by that master itself, for its own key: see authorize.ts); deleted once served.
  settings_request: z.looseObject({ profile: name, profile_id: hex64, master_key: hex64 }),
  // used: how many keys it admitted so far (each redemption replaces the policy with one more)
  join_token: z.looseObject({ token_id: z.string().regex(/^[0-9a-f]{16}$/), secret_sha256: hex64, expires: z.iso.datetime({ offset: true }), uses: z.number().int().min(1).max(1_000_000), used: z.number().int().min(0).max(1_000_000).optional() }),
  delete: z.looseObject({ policy_id: hex64 })
}

/** Every type a node declares itself with (scripts/<role>.al, AnyLog's node_policy.al). */
export const NODE_POLICY_TYPES = ['master', 'slave', 'worker', 'member', ...ANYLOG_NODE_TYPES] as const

/**
 * Node declarations whose name is owned: a node re-declaring itself replaces its previous
 * declaration. Not member nor AnyLog's types: as in AnyLog, nodes of those may share a name
 * (EdgeLake's env files name every operator edgelake-operator), and a restart finds its own
 * declaration by name, company, local_ip and port before declaring again.
 */
export const DECLARATION_TYPES = ['master', 'slave', 'worker'] as const

/** Types only the master or an admin may write. */
export const PRIVILEGED_TYPES = ['assignment', 'admin', 'network', 'admission', 'revocation', 'join_token', 'master_key', 'settings_copy', 'settings_request', 'drain'] as const

/**
 * Types only a trusted master key may write, not an admin: a settings copy holds what only a
 * master can open, a settings request asks for one, and a master key is one every profile's
 * settings get re-sealed to.
 */
export const MASTER_ONLY_TYPES = ['settings_copy', 'settings_request', 'master_key'] as const

/** Types whose policies are identified by a `name`. */
export const NAMED_TYPES = ['master', 'slave', 'worker', 'subaccount', 'profile', 'admin'] as const
