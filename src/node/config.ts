import { readFileSync } from 'node:fs'
import { parseEnv } from 'node:util'
import { LedgerMeshError, errorMessage } from '../base/errors.js'
import { decodeUtf8 } from '../base/utf8.js'
import { isSecretName } from '../base/secrets.js'
import { parseDuration, type Duration } from '../base/duration.js'
import { type Retain, parseRetain } from '../services/compactor.js'
import { SWARM_KEY_HEADER } from '../net/private-network.js'
import type { Bind } from '../net/bind.js'
import { parseHostPortList } from '../net/host-port.js'
import type { WitnessSet } from '../ledger/witnessed.js'
import { type PgHost, parsePgHosts } from '../ledger/pg-hosts.js'
import { ConfigError } from './config-error.js'
import { type NetworkKey, parseNetworkKey } from './network-key.js'

export { ConfigError } from './config-error.js'
export { type NetworkKey, networkKeyId } from './network-key.js'
import { kindList, subaccountRunnerKey } from './runner-keys.js'

export { SWARM_KEY_HEADER }

/**
 * A node's configuration, read from an env file written the AnyLog way (the keys of
 * AnyLog's deployment env files are accepted as they are written there). Values in the file
 * win; keys absent from the file may come from the process environment.
 *
 * Every value is validated at start: a bad one stops the node with one line naming the key,
 * the value and what was expected (see ConfigError and the CLI).
 */

export { NODE_TYPES, type NodeType, COMBINABLE_ROLES } from './config-rules.js'
import { type NodeType, COMBINABLE_ROLES, RULES } from './config-rules.js'

/** What a node does, whatever its type is called: its start-up script is scripts/<role>.al. */
export const NODE_ROLES = ['master', 'slave', 'worker', 'member'] as const
export type NodeRole = typeof NODE_ROLES[number]

type CombinableRole = typeof COMBINABLE_ROLES[number]

const ROLE_OF: Record<NodeType, NodeRole> = {
  master: 'master',
  slave: 'slave',
  worker: 'worker',
  member: 'member',
  operator: 'member',
  query: 'member',
  publisher: 'member',
  generic: 'member',
  'master-operator': 'master',
  'master-publisher': 'master'
}

export interface NodeConfig {
  /** NODE_TYPE as written (lower-cased): a node type, or a list of roles (`master,slave,worker`) */
  nodeType: string
  /** what the node does (master, slave, worker, or member for AnyLog's replica types) */
  role: NodeRole
  /** every role this node holds: one, or several in a stand-alone node (role is the first) */
  roles: NodeRole[]
  nodeName: string
  companyName: string
  /** address the p2p and REST servers listen on */
  ip: string
  /** address published in the node's policy (EXTERNAL_IP, else the listen address) */
  externalIp: string
  serverPort: number
  restPort: number
  /** REST_BIND: true (INTERNAL_IP only), false (all interfaces) or an address; default loopback */
  restBind: Bind
  /** TCP_BIND, the p2p server's: true (INTERNAL_IP only, the default), false or an address */
  tcpBind: Bind
  /** ip:port of the master's p2p server (the first of LEDGER_CONN's list); for a master, its own */
  ledgerConn: string
  /** every master LEDGER_CONN lists, in its order (ledgerConn first); clients rotate through them */
  ledgerConns: string[]
  db: {
    type: 'psql' | 'level'
    /** as written in DB_TYPE, to say in the log why the embedded store was chosen */
    requested: string
    /** DB_IP and DB_PORT as written: one server, or a cluster's in libpq's multi-host form */
    ip: string
    port: string
    /** the servers they name, in order */
    hosts: PgHost[]
    user: string
    password?: string
    name: string
    /** LEDGER_REQUIRE_SYNC: a master refuses to start, and to commit, without a synchronous standby */
    requireSync: boolean
  }
  blockchainSync: Duration
  /** `master`, or the name or ip:port of the peer this node syncs from */
  blockchainSource: string
  loc: string
  country: string
  state: string
  city: string
  logLevel: string
  restToken?: string
  /** reads need the token too (REST_READ_AUTH=true) */
  restReadAuth: boolean
  /** master: whether only admitted keys take part (ADMISSION, default required) */
  admission: 'required' | 'open'
  /** a token from the master's `create join token`, presented on first contact (JOIN_TOKEN) */
  joinToken?: string
  /** WITNESS=true: cosign the network's checkpoints (POST /add-checkpoint) */
  witness: boolean
  /** master: the witnesses that cosign the network's checkpoints and how many must (WITNESSES, WITNESS_QUORUM) */
  witnesses?: WitnessSet
  /** a static copy of the log (export-tiles on a web server) to catch up from when no master answers (TILES_MIRROR) */
  tilesMirror?: string
  /** LEDGER_MODE: `full` keeps a replica of the whole ledger; `light` (a worker only) holds its own policies with proofs */
  ledgerMode: 'full' | 'light'
  /** BOOTSTRAP: how a replica with an empty store starts (auto: from a witnessed snapshot when there is one) */
  bootstrap: 'auto' | 'snapshot' | 'full'
  /** SNAPSHOT_SOURCES: peers (ip:port) and static mirrors (http URLs) to fetch a snapshot from, besides the masters */
  snapshotSources: string[]
  /** SNAPSHOT_INTERVAL: at most this often a full node takes a snapshot of the state it holds */
  snapshotInterval: Duration
  /** RETAIN: how much of the log a replica keeps whole (compaction; see services/compactor.ts) */
  retain: Retain
  /** capacity declared in the node's policy: sub-accounts a slave hosts, profiles a worker runs */
  slots: number
  /** a worker's slave (SLAVE_NAME) */
  slaveName?: string
  /** the profile kinds a worker runs (PROFILE_KINDS), each with its runner command */
  profileKinds: string[]
  /** kind → the shell command that runs one profile of that kind (PROFILE_RUNNER_<KIND>) */
  profileRunners: Record<string, string>
  /** a slave's processes per sub-account: kind (SUBACCOUNT_PROCESSES, in order) → command (SUBACCOUNT_RUNNER_<KIND>) */
  subaccountRunners: Record<string, string>
  /** master: how long a worker's lease lasts without renewal, and the grace after it */
  leaseTtl: Duration
  leaseGrace: Duration
  /** worker: SIGTERM to SIGKILL, when a profile process is stopped */
  profileStopGrace: Duration
  /** MASTERS_FROM_LEDGER: whether clients add the masters the ledger declares to LEDGER_CONN's */
  mastersFromLedger: boolean
  /** several masters over one PostgreSQL: the writer lease's TTL (MASTER_LEASE_TTL) */
  masterLeaseTtl: Duration
  /** MASTER_APPROVAL: whether the active master declares newly registered masters itself */
  masterApproval: 'auto' | 'manual'
  /** NETWORK_KEY: the pre-shared key of a private libp2p network; none = an open network */
  networkKey?: NetworkKey
  /** the raw key/value pairs, for `$KEY` expansion in scripts and for later features */
  env: Record<string, string>
  /** the file the config came from */
  source: string
}



/**
 * The values of the config's secrets: every key named like a secret (DB_PASSWD, REST_TOKEN,
 * MY_API_KEY, ...; see isSecretName), for masking in answers and log lines.
 */
export function configSecrets (config: NodeConfig): { keys: string[], values: string[] } {
  const keys = Object.keys(config.env).filter(isSecretName)
  const values = keys.map(key => config.env[key])
  if (config.db.password !== undefined) values.push(config.db.password)
  if (config.restToken !== undefined) values.push(config.restToken)
  // read from a key file, the key itself is not among the env values
  if (config.networkKey !== undefined) values.push(Buffer.from(config.networkKey.key).toString('hex'))
  return { keys, values: values.filter(v => v !== '') }
}

/** Default SLOTS by role: sub-accounts per slave, profiles per worker. */
const DEFAULT_SLOTS: Record<NodeRole, number> = { master: 0, slave: 10, worker: 4, member: 0 }

/** PROFILE_RUNNER_<KIND>: the env key naming the command for one profile kind. */
export function runnerKey (kind: string): string {
  return `PROFILE_RUNNER_${kind.toUpperCase().replace(/-/g, '_')}`
}

/** Reads and validates an env file. Throws ConfigError for the first bad key. */
export function loadConfigFile (path: string, processEnv: NodeJS.ProcessEnv = process.env): NodeConfig {
  let bytes: Buffer
  try {
    bytes = readFileSync(path)
  } catch (err) {
    throw new LedgerMeshError('bad_config', `cannot read config file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { source: path })
  }
  const text = decodeUtf8(bytes, `config file ${path}`, 'bad_config')
  checkEnvLines(text, path)
  return parseConfig(parseEnv(text) as Record<string, string>, path, processEnv)
}

/**
 * parseEnv skips lines it cannot read; a line such as `NODE_TYPE master` would then vanish and
 * surface later as a confusing "missing" key. Name it instead. Lines inside a quoted multi-line
 * value are not checked.
 */
function checkEnvLines (text: string, source: string): void {
  let openQuote: string | undefined
  text.split(/\r?\n/).forEach((line, i) => {
    if (openQuote !== undefined) {
      if (line.includes(openQuote)) openQuote = undefined
      return
    }
    const trimmed = line.trim()
    if (trimmed === '' || trimmed.startsWith('#')) return
    const match = /^(?:export\s+)?[A-Za-z_][A-Za-z0-9_.-]*\s*=\s*(["'`]?)(.*)$/.exec(trimmed)
    if (match === null) {
      throw new LedgerMeshError('bad_config', `line ${i + 1} of ${source} is not KEY=value: ${JSON.stringify(trimmed.slice(0, 80))}`, { source, line: i + 1 })
    }
    const [, quote, rest] = match
    if (quote !== '' && !rest.includes(quote)) openQuote = quote
  })
}

export function parseConfig (fileEnv: Record<string, string>, source: string, processEnv: NodeJS.ProcessEnv = {}): NodeConfig {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(processEnv)) {
    if (value !== undefined && (key in RULES || key.startsWith('PROFILE_RUNNER_') || key.startsWith('SUBACCOUNT_RUNNER_'))) env[key] = value
  }
  Object.assign(env, fileEnv)

  const value = <T>(key: string, required = false): T | undefined => {
    const rule = RULES[key]
    const raw = env[key] !== undefined && env[key] !== '' ? env[key] : rule.default
    if (raw === undefined) {
      if (required) throw new ConfigError(key, undefined, rule.expected, source)
      return undefined
    }
    const parsed = rule.schema.safeParse(raw)
    if (!parsed.success) throw new ConfigError(key, raw, rule.expected, source)
    return parsed.data as T
  }

  const nodeType = value<string>('NODE_TYPE', true)!
  // a list of roles runs in one node; its primary role (the first of master, slave, worker) names its start-up
  const roles: NodeRole[] = nodeType.includes(',') ? COMBINABLE_ROLES.filter(r => nodeType.split(',').includes(r as CombinableRole)) : [ROLE_OF[nodeType as NodeType]]
  const role = roles[0]
  const nodeName = value<string>('NODE_NAME', true)!
  const ip = value<string>('INTERNAL_IP')!
  const serverPort = value<number>('ANYLOG_SERVER_PORT')!
  const restPort = value<number>('ANYLOG_REST_PORT')!
  if (serverPort !== 0 && serverPort === restPort) {
    throw new ConfigError('ANYLOG_REST_PORT', String(restPort), 'a port different from ANYLOG_SERVER_PORT', source)
  }
  const connText = value<string>('LEDGER_CONN', role !== 'master')
  const ledgerConns = connText === undefined ? [`${ip}:${serverPort}`] : masterList(connText, source)
  const ledgerConn = ledgerConns[0]
  const requestedDb = value<string>('DB_TYPE')!
  const syncText = value<string>('BLOCKCHAIN_SYNC')!
  const blockchainSync = parseDuration(syncText)
  if (blockchainSync === undefined) {
    throw new ConfigError('BLOCKCHAIN_SYNC', syncText, RULES.BLOCKCHAIN_SYNC.expected + ' (from 50 ms to 24 hours)', source)
  }

  const interval = (key: string): Duration => {
    const text = value<string>(key)!
    const parsed = parseDuration(text)
    if (parsed === undefined) throw new ConfigError(key, text, RULES[key].expected + ' (from 50 ms to 24 hours)', source)
    return parsed
  }
  const leaseTtl = interval('LEASE_TTL')
  const leaseGrace = interval('LEASE_GRACE')
  const profileStopGrace = interval('PROFILE_STOP_GRACE')
  const masterLeaseTtl = interval('MASTER_LEASE_TTL')
  const masterApproval = value<'auto' | 'manual'>('MASTER_APPROVAL')!
  // a worker that is also the slave is its own slave
  const slaveName = value<string>('SLAVE_NAME', roles.includes('worker') && !roles.includes('slave')) ?? (roles.includes('worker') && roles.includes('slave') ? nodeName : undefined)
  const profileKinds = kindList(value<string>('PROFILE_KINDS'))
  const ledgerMode = value<'full' | 'light'>('LEDGER_MODE')!
  if (ledgerMode === 'light' && (roles.length !== 1 || role !== 'worker')) {
    throw new ConfigError('LEDGER_MODE', env.LEDGER_MODE, `full on a ${nodeType} node: only a worker (NODE_TYPE=worker) can be light; a master, a slave or a stand-alone node keeps the whole ledger`, source)
  }
  const networkKeyText = value<string>('NETWORK_KEY')
  const networkKey = networkKeyText === undefined ? undefined : parseNetworkKey(networkKeyText, source)
  // kind → command; each listed kind needs its command (only where the role runs them)
  const runners = (kinds: string[], keyOf: (kind: string) => string, what: (kind: string) => string, list: string): Record<string, string> => Object.fromEntries(kinds.map(kind => {
    const command = env[keyOf(kind)]?.trim()
    if (command === undefined || command === '') throw new ConfigError(keyOf(kind), env[keyOf(kind)], `the command that runs ${what(kind)} (${list} lists '${kind}')`, source)
    return [kind, command]
  }))
  const profileRunners = roles.includes('worker') ? runners(profileKinds, runnerKey, kind => `a '${kind}' profile`, 'PROFILE_KINDS') : {}
  const subaccountKinds = kindList(value<string>('SUBACCOUNT_PROCESSES'))
  const subaccountRunners = roles.includes('slave') ? runners(subaccountKinds, subaccountRunnerKey, kind => `a sub-account's '${kind}' process`, 'SUBACCOUNT_PROCESSES') : {}

  value<Bind>('BROKER_BIND') // checked only: ledgermesh has no message broker
  return {
    nodeType,
    role,
    roles,
    nodeName,
    companyName: value<string>('COMPANY_NAME')!,
    ip,
    externalIp: value<string>('EXTERNAL_IP') ?? ip,
    serverPort,
    restPort,
    restBind: value<Bind>('REST_BIND')!,
    tcpBind: value<Bind>('TCP_BIND')!,
    ledgerConn,
    ledgerConns,
    db: {
      type: requestedDb.toLowerCase() === 'psql' ? 'psql' : 'level',
      requested: requestedDb,
      ip: value<string>('DB_IP')!,
      port: value<string>('DB_PORT')!,
      hosts: dbHosts(value<string>('DB_IP')!, value<string>('DB_PORT')!, source),
      user: value<string>('DB_USER')!,
      password: value<string>('DB_PASSWD'),
      name: value<string>('DB_NAME')!,
      requireSync: value<string>('LEDGER_REQUIRE_SYNC') === 'true'
    },
    blockchainSync,
    blockchainSource: value<string>('BLOCKCHAIN_SOURCE')!,
    loc: value<string>('LOC') ?? value<string>('LOCATION') ?? '0.0, 0.0',
    country: value<string>('COUNTRY')!,
    state: value<string>('STATE')!,
    city: value<string>('CITY')!,
    logLevel: value<string>('LOG_LEVEL')!,
    restToken: value<string>('REST_TOKEN'),
    restReadAuth: value<string>('REST_READ_AUTH') === 'true',
    admission: value<'required' | 'open'>('ADMISSION')!,
    joinToken: value<string>('JOIN_TOKEN'),
    tilesMirror: value<string>('TILES_MIRROR'),
    witness: value<string>('WITNESS') === 'true',
    witnesses: witnessList(value<string>('WITNESSES'), value<number>('WITNESS_QUORUM'), env, source),
    ledgerMode,
    bootstrap: value<'auto' | 'snapshot' | 'full'>('BOOTSTRAP')!,
    snapshotSources: (value<string>('SNAPSHOT_SOURCES') ?? '').split(',').map(s => s.trim()).filter(s => s !== ''),
    snapshotInterval: interval('SNAPSHOT_INTERVAL'),
    retain: parseRetain(value<string>('RETAIN')!) ?? ((): never => { throw new ConfigError('RETAIN', env.RETAIN, RULES.RETAIN.expected, source) })(),
    slots: value<number>('SLOTS') ?? DEFAULT_SLOTS[role],
    slaveName,
    profileKinds,
    profileRunners,
    subaccountRunners,
    leaseTtl,
    leaseGrace,
    profileStopGrace,
    masterLeaseTtl,
    masterApproval,
    mastersFromLedger: value<string>('MASTERS_FROM_LEDGER') === 'true',
    networkKey,
    env,
    source
  }
}

/** DB_IP's servers with DB_PORT's ports; a bad host or port is named in the error. */
function dbHosts (ip: string, port: string, source: string): PgHost[] {
  try {
    return parsePgHosts(ip, port)
  } catch (err) {
    const key = err instanceof LedgerMeshError && err.details.field === 'port' ? 'DB_PORT' : 'DB_IP'
    throw new ConfigError(key, key === 'DB_PORT' ? port : ip, `${RULES[key].expected} (${errorMessage(err)})`, source)
  }
}

/** LEDGER_CONN's addresses; a bad element is named in the error, with its place in the list. */
function masterList (text: string, source: string): string[] {
  try {
    return parseHostPortList(text, 'bad_config')
  } catch (err) {
    throw new ConfigError('LEDGER_CONN', text, `${RULES.LEDGER_CONN.expected} (${errorMessage(err)})`, source)
  }
}


/** WITNESSES and WITNESS_QUORUM as the network policy carries them. */
function witnessList (text: string | undefined, quorum: number | undefined, env: Record<string, string>, source: string): WitnessSet | undefined {
  if (text === undefined) {
    if (quorum !== undefined) throw new ConfigError('WITNESS_QUORUM', env.WITNESS_QUORUM, 'nothing while WITNESSES names no witness', source)
    return undefined
  }
  const witnesses = text.split(',').map(part => {
    const [key, address] = part.trim().split('@')
    return { key, address }
  })
  if (new Set(witnesses.map(w => w.key)).size !== witnesses.length) throw new ConfigError('WITNESSES', text, 'each witness key once', source)
  const needed = quorum ?? Math.floor(witnesses.length / 2) + 1
  if (needed > witnesses.length) throw new ConfigError('WITNESS_QUORUM', env.WITNESS_QUORUM, `at most the ${witnesses.length} witness(es) WITNESSES names`, source)
  return { witnesses, quorum: needed }
}
