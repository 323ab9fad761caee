import { z } from 'zod'
import { BIND_EXPECTED, isIpv4, parseBind } from '../net/bind.js'
import { TOKEN_FORM, TOKEN_PATTERN } from '../services/admission/tokens.js'
import { NETWORK_KEY_EXPECTED } from './network-key.js'

/**
 * Every key of a node's env file: its schema, the form the error line names when a value does
 * not fit, and its default. config.ts reads a file through these rules.
 */

/**
 * NODE_TYPE: ledgermesh's own types, and AnyLog's. An AnyLog operator, query, publisher or
 * generic node runs as a member (a replica that serves REST) declaring a policy of its own
 * type; AnyLog's master-operator and master-publisher run as the master, declaring an
 * operator or publisher policy (as AnyLog's set_params.al maps them).
 */
export const NODE_TYPES = ['master', 'slave', 'worker', 'member', 'operator', 'query', 'publisher', 'generic', 'master-operator', 'master-publisher'] as const
export type NodeType = typeof NODE_TYPES[number]

/** The roles one node may hold together (stand-alone): `NODE_TYPE=master,slave,worker`. */
export const COMBINABLE_ROLES = ['master', 'slave', 'worker'] as const

const port = (min: number) => z.coerce.number().int().min(min).max(65535)
const nonEmpty = z.string().trim().min(1)
const ipv4 = z.string().trim().refine(isIpv4)
/** AnyLog's true/false (any case), or an IPv4 address (see src/net/bind.ts) */
const bind = z.string().refine(text => parseBind(text) !== undefined).transform(text => parseBind(text)!)
/** LEDGER_CONN: one address or a list; each element is checked by parseHostPortList, which names a bad one */
const hostPortList = z.string().trim().min(1)
const logLevels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const

/** One entry per key: its schema, the expected form for the error line, and a default. */
export interface KeyRule {
  schema: z.ZodType
  expected: string
  default?: string
}


export const RULES: Record<string, KeyRule> = {
  NODE_TYPE: {
    schema: z.string().trim().toLowerCase().pipe(z.union([
      z.enum(NODE_TYPES),
      // several roles in one node (stand-alone), each once, in any order
      z.string().transform(text => text.split(',').map(r => r.trim())).pipe(z.array(z.enum(COMBINABLE_ROLES)).min(2).refine(roles => new Set(roles).size === roles.length)).transform(roles => roles.join(','))
    ])),
    expected: `one of ${NODE_TYPES.join(', ')}, or several of ${COMBINABLE_ROLES.join(', ')} separated by commas (one node holding those roles: a stand-alone network)`
  },
  NODE_NAME: { schema: nonEmpty.max(128).regex(/^[A-Za-z0-9_.-]+$/), expected: 'a name of letters, digits, _ . - (at most 128)' },
  COMPANY_NAME: { schema: nonEmpty.max(128), expected: 'a non-empty company name', default: 'ledgermesh' },
  INTERNAL_IP: { schema: ipv4, expected: 'an IPv4 address', default: '127.0.0.1' },
  EXTERNAL_IP: { schema: ipv4, expected: 'an IPv4 address' },
  ANYLOG_SERVER_PORT: { schema: port(0), expected: 'a port from 0 (any free port) to 65535', default: '32048' },
  ANYLOG_REST_PORT: { schema: port(0), expected: 'a port from 0 (any free port) to 65535', default: '32049' },
  REST_BIND: { schema: bind, expected: `${BIND_EXPECTED} for the REST server`, default: '127.0.0.1' },
  TCP_BIND: { schema: bind, expected: `${BIND_EXPECTED} for the p2p server`, default: 'true' },
  BROKER_BIND: { schema: bind, expected: BIND_EXPECTED },
  LEDGER_CONN: { schema: hostPortList, expected: 'the master\'s p2p address as ip:port, e.g. 127.0.0.1:32048, or a comma-separated list of masters\' addresses' },
  DB_TYPE: { schema: nonEmpty, expected: 'psql, or sqlite/level for the embedded store', default: 'level' },
  DB_IP: { schema: nonEmpty, expected: 'the database host, or a cluster\'s hosts separated by commas (host or host:port each), e.g. 10.0.0.1:5432,10.0.0.2:5432', default: '127.0.0.1' },
  DB_PORT: { schema: z.string().trim().regex(/^\d{1,5}(\s*,\s*\d{1,5})*$/), expected: 'a port from 1 to 65535, or one per DB_IP host separated by commas', default: '5432' },
  LEDGER_REQUIRE_SYNC: { schema: z.enum(['true', 'false']), expected: 'true (a master refuses to start, and to commit, while PostgreSQL has no synchronous standby) or false (it warns)', default: 'false' },
  DB_USER: { schema: nonEmpty, expected: 'a database user', default: 'postgres' },
  DB_PASSWD: { schema: z.string(), expected: 'a password' },
  DB_NAME: { schema: nonEmpty.regex(/^[A-Za-z_][A-Za-z0-9_]*$/), expected: 'a database name of letters, digits and _', default: 'blockchain' },
  BLOCKCHAIN_SYNC: { schema: nonEmpty, expected: 'an interval such as "30 second", "500 ms" or "1 minute"', default: '30 second' },
  BLOCKCHAIN_SOURCE: { schema: nonEmpty, expected: '"master", a peer node name, or ip:port', default: 'master' },
  LOC: { schema: z.string(), expected: 'a location "lat, long"' },
  // AnyLog's name for LOC (set_params.al: `if $LOCATION then loc = $LOCATION`)
  LOCATION: { schema: z.string(), expected: 'a location "lat, long"' },
  COUNTRY: { schema: z.string(), expected: 'a country', default: 'Unknown' },
  STATE: { schema: z.string(), expected: 'a state', default: 'Unknown' },
  CITY: { schema: z.string(), expected: 'a city', default: 'Unknown' },
  LOG_LEVEL: { schema: z.string().trim().toLowerCase().pipe(z.enum(logLevels)), expected: `one of ${logLevels.join(', ')}`, default: 'info' },
  REST_TOKEN: { schema: z.string().min(8), expected: 'a token of at least 8 characters' },
  REST_READ_AUTH: { schema: z.enum(['true', 'false']), expected: 'true or false', default: 'false' },
  ADMISSION: { schema: z.string().trim().toLowerCase().pipe(z.enum(['required', 'open'])), expected: 'required (only admitted nodes sync and write) or open', default: 'required' },
  WITNESS: { schema: z.enum(['true', 'false']), expected: 'true or false: whether this node cosigns its network\'s checkpoints', default: 'false' },
  WITNESSES: { schema: z.string().trim().regex(/^[0-9a-f]{64}@[^\s,@]+:[0-9]{1,5}(\s*,\s*[0-9a-f]{64}@[^\s,@]+:[0-9]{1,5})*$/), expected: 'a master\'s witnesses, comma-separated <public key hex>@<ip>:<port> (a witness node\'s key from its GET /witness, its TCP address)' },
  WITNESS_QUORUM: { schema: z.coerce.number().int().min(1).max(64), expected: 'how many witnesses must cosign a checkpoint, a whole number from 1 to 64 (default: a majority of WITNESSES)' },
  TILES_MIRROR: { schema: z.string().trim().regex(/^https?:\/\/[^\s]+$/), expected: 'the http(s) URL of a tiled copy of the log (ledgermesh export-tiles on a web server), e.g. https://mirror.example/ledger/' },
  LEDGER_MODE: { schema: z.string().trim().toLowerCase().pipe(z.enum(['full', 'light'])), expected: 'full (a replica of the whole ledger) or light (a worker holding only its own policies, each with an inclusion proof)', default: 'full' },
  BOOTSTRAP: { schema: z.string().trim().toLowerCase().pipe(z.enum(['auto', 'snapshot', 'full'])), expected: 'auto (a replica with an empty store starts from a witnessed snapshot when one is served), snapshot (always from a snapshot) or full (replay the whole log)', default: 'auto' },
  SNAPSHOT_SOURCES: { schema: z.string().trim().regex(/^(https?:\/\/[^\s,]+|[^\s,/:]+:[0-9]{1,5})(\s*,\s*(https?:\/\/[^\s,]+|[^\s,/:]+:[0-9]{1,5}))*$/), expected: 'comma-separated snapshot sources: ip:port of a node (the slave, a worker) or the http(s) URL of a static mirror (export-tiles)' },
  RETAIN: { schema: nonEmpty, expected: 'witnessed (compact to each witnessed snapshot), all (never compact), a number of entries, or an interval such as "1 hour"', default: 'witnessed' },
  SNAPSHOT_INTERVAL: { schema: nonEmpty, expected: 'an interval such as "5 minutes"', default: '5 minutes' },
  JOIN_TOKEN: { schema: z.string().trim().regex(TOKEN_PATTERN), expected: `a join token as the master's 'create join token' prints it (${TOKEN_FORM})` },
  SLOTS: { schema: z.coerce.number().int().min(0).max(100_000), expected: 'a whole number of slots from 0 to 100000' },
  SLAVE_NAME: { schema: nonEmpty.max(128).regex(/^[A-Za-z0-9_.-]+$/), expected: 'the NODE_NAME of this worker\'s slave' },
  PROFILE_KINDS: { schema: z.string().trim().regex(/^[a-z0-9_-]+(\s*,\s*[a-z0-9_-]+)*$/i), expected: 'comma-separated profile kinds, e.g. linkedin,email-verification' },
  SUBACCOUNT_PROCESSES: { schema: z.string().trim().regex(/^[a-z0-9_-]+(\s*,\s*[a-z0-9_-]+)*$/i), expected: 'comma-separated process kinds a slave runs per sub-account, e.g. ingest,import,plan,rule,timeline' },
  LEASE_TTL: { schema: nonEmpty, expected: 'an interval such as "6 seconds"', default: '6 seconds' },
  LEASE_GRACE: { schema: nonEmpty, expected: 'an interval such as "4 seconds"', default: '4 seconds' },
  PROFILE_STOP_GRACE: { schema: nonEmpty, expected: 'an interval such as "2 seconds"', default: '2 seconds' },
  MASTERS_FROM_LEDGER: { schema: z.enum(['true', 'false']), expected: 'true (clients also try the masters the ledger declares) or false (only LEDGER_CONN, e.g. behind a proxy or load balancer)', default: 'true' },
  // several masters over one PostgreSQL: the writer lease, and who adds a master
  MASTER_LEASE_TTL: { schema: nonEmpty, expected: 'an interval such as "2 seconds"', default: '2 seconds' },
  MASTER_APPROVAL: { schema: z.string().trim().toLowerCase().pipe(z.enum(['auto', 'manual'])), expected: 'auto (the active master declares every master registered in the database) or manual (an admin runs `approve master where key = ...`)', default: 'auto' },
  NETWORK_KEY: { schema: nonEmpty, expected: NETWORK_KEY_EXPECTED }
}
