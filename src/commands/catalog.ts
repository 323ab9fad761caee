import type { ArgGrammar } from './ast.js'

/**
 * Every command the language knows. The parser matches the longest run of words against this
 * table and then reads the arguments with the command's grammar; the executor looks up a
 * handler by `name`; REST uses `method` (AnyLog: reads by GET, writes by POST); `help` prints
 * `usage` and `summary`.
 */
export interface CommandSpec {
  /** The command's words joined by one space: the key of its handler. */
  name: string
  method: 'GET' | 'POST'
  grammar: ArgGrammar
  usage: string
  summary: string
}

export const COMMANDS: readonly CommandSpec[] = [
  { name: 'get processes', method: 'GET', grammar: 'where', usage: 'get processes [where format=json]', summary: 'The node\'s services and their status.' },
  { name: 'get status', method: 'GET', grammar: 'where', usage: 'get status [where format=json]', summary: 'Whether the node runs, its role and its ledger head.' },
  { name: 'get profiles', method: 'GET', grammar: 'where', usage: 'get profiles [where format=json]', summary: 'Profiles: on a worker its processes (state, pid, restarts, uptime); on a slave where each runs, and the slave\'s own processes per sub-account; on the master where each sub-account and profile is assigned, and the leases.' },
  { name: 'get hostname', method: 'GET', grammar: 'none', usage: 'get hostname', summary: 'The machine\'s host name.' },
  { name: 'get variables', method: 'GET', grammar: 'none', usage: 'get variables', summary: 'The node\'s variables and their values.' },
  { name: 'get version', method: 'GET', grammar: 'none', usage: 'get version', summary: 'The ledgermesh version.' },
  { name: 'help', method: 'GET', grammar: 'rest', usage: 'help [command]', summary: 'Lists the commands, or explains one.' },
  { name: 'echo', method: 'GET', grammar: 'rest', usage: 'echo <values>', summary: 'Prints its arguments with variables expanded.' },
  { name: 'run tcp server', method: 'POST', grammar: 'where', usage: 'run tcp server where internal_ip=<ip> and internal_port=<port> [and external_ip=<ip> and external_port=<port>] [and bind=true|false|<ip>]', summary: 'Starts the node\'s p2p (libp2p TCP) server; bind=true listens on internal_ip only, false on all interfaces.' },
  { name: 'run rest server', method: 'POST', grammar: 'where', usage: 'run rest server where internal_ip=<ip> and internal_port=<port> [and bind=true|false|<ip>]', summary: 'Starts the node\'s REST server; bind=true listens on internal_ip only, false on all interfaces.' },
  { name: 'connect dbms', method: 'POST', grammar: 'value-where', usage: 'connect dbms blockchain where type=<psql|level> [and ip=<ip> and port=<port> and user=<user> and password=<password>]', summary: 'Connects the ledger store.' },
  { name: 'create table', method: 'POST', grammar: 'value-where', usage: 'create table ledger where dbms=blockchain', summary: 'Creates the ledger table in the connected store (idempotent).' },
  { name: 'run scheduler', method: 'POST', grammar: 'value', usage: 'run scheduler <id>', summary: 'Starts a scheduler.' },
  { name: 'run blockchain sync', method: 'POST', grammar: 'where', usage: 'run blockchain sync where source=<master|peer> and time=<n seconds> and dest=<file|dbms> and connection=<ip:port>', summary: 'Keeps the local ledger replica in sync with its source.' },
  { name: 'blockchain prepare policy', method: 'POST', grammar: 'value', usage: 'blockchain prepare policy !policy', summary: 'Adds id, date and the node\'s signature to the policy held in a variable.' },
  { name: 'blockchain insert', method: 'POST', grammar: 'where', usage: 'blockchain insert where policy=!policy [and local=true] [and master=<ip:port>]', summary: 'Inserts a policy into the ledger through the master.' },
  { name: 'blockchain get', method: 'GET', grammar: 'query', usage: 'blockchain get <type|(t1, t2)|*> [where f=v [and|or ...]] [bring[.count|.unique|.json|.table|.first|.recent|.ip_port] [type][field] ... [separator=<s>]]', summary: 'Queries the local ledger replica.' },
  { name: 'blockchain prove', method: 'GET', grammar: 'where', usage: 'blockchain prove where id = <policy id> | seq = <entry seq> [and size = <tree size>]', summary: 'An RFC 6962 inclusion proof of the policy\'s entry in the tree of `size` entries (this node\'s checkpoint by default), with the entry\'s bytes and the signed checkpoint.' },
  { name: 'blockchain prove state', method: 'GET', grammar: 'where', usage: 'blockchain prove state where id = <policy id>', summary: 'A sparse Merkle proof that the policy is live (with the entry that put it) or absent, against the state root of this node\'s signed checkpoint (its state line).' },
  { name: 'blockchain prove consistency', method: 'GET', grammar: 'where', usage: 'blockchain prove consistency where first = <tree size> [and second = <tree size>]', summary: 'An RFC 6962 consistency proof that the tree of `first` entries is a prefix of the tree of `second` (this node\'s checkpoint by default).' },
  { name: 'get checkpoint', method: 'GET', grammar: 'none', usage: 'get checkpoint', summary: 'The signed checkpoint this node holds (a C2SP signed note: origin, tree size, root hash, the master\'s signature); on a network with witnesses, the latest one a quorum of them cosigned.' },
  { name: 'blockchain delete policy', method: 'POST', grammar: 'where', usage: 'blockchain delete policy where id=<policy id>', summary: 'Deletes a policy from the ledger.' },
  { name: 'run allocator', method: 'POST', grammar: 'none', usage: 'run allocator', summary: 'Master: assigns sub-accounts to slaves and profiles to workers, and keeps the workers\' leases.' },
  { name: 'run operator', method: 'POST', grammar: 'where', usage: 'run operator', summary: 'Worker: keeps the lease with the master and runs one process per assigned profile. Slave: keeps its lease and runs each SUBACCOUNT_PROCESSES kind for every assigned sub-account.' },
  { name: 'worker drain', method: 'POST', grammar: 'none', usage: 'worker drain', summary: 'Worker: moves this worker\'s profiles to other workers and takes no new ones. On a slave, as slave drain.' },
  { name: 'worker resume', method: 'POST', grammar: 'none', usage: 'worker resume', summary: 'Worker: ends a drain; the worker takes profiles again. On a slave, as slave resume.' },
  { name: 'slave drain', method: 'POST', grammar: 'none', usage: 'slave drain', summary: 'Slave: moves this slave\'s sub-accounts (their processes, and their profiles to that slave\'s workers) to other slaves and takes no new ones.' },
  { name: 'slave resume', method: 'POST', grammar: 'none', usage: 'slave resume', summary: 'Slave: ends a drain; the slave takes sub-accounts again.' },
  { name: 'create join token', method: 'POST', grammar: 'where', usage: 'create join token [where ttl = <duration, default 1 hour> and uses = <n, default 1>]', summary: 'Master: a token that admits up to `uses` nodes (JOIN_TOKEN in their env) until it expires.' },
  { name: 'admit node', method: 'POST', grammar: 'where', usage: 'admit node where key = <public key> [and name = <node name>]', summary: 'Master: admits a node\'s key by hand (and lifts a revocation of it).' },
  { name: 'revoke node', method: 'POST', grammar: 'where', usage: 'revoke node where key = <public key> [and reason = <text>]', summary: 'Master: the key may no longer sync, renew its lease or write; its declarations are deleted and its profiles move once its lease lapses.' },
  { name: 'approve master', method: 'POST', grammar: 'where', usage: 'approve master where key = <public key>', summary: 'Master: declares on the ledger a master registered in the shared database (MASTER_APPROVAL=manual); replicas trust its heads from then on.' },
  { name: 'process', method: 'POST', grammar: 'value', usage: 'process <file>', summary: 'Runs a script file in the command language.' },
  { name: 'exit node', method: 'POST', grammar: 'none', usage: 'exit node', summary: 'Stops the node cleanly.' },
  // AnyLog's scripts and REST clients call these; see handlers/anylog.ts
  { name: 'print', method: 'GET', grammar: 'rest', usage: 'print <values>', summary: 'Prints its arguments with variables expanded (as echo).' },
  { name: 'get node name', method: 'GET', grammar: 'none', usage: 'get node name', summary: 'The node\'s name.' },
  { name: 'set node name', method: 'POST', grammar: 'value', usage: 'set node name <name>', summary: 'Sets the name the node shows (the node_name variable).' },
  { name: 'get dictionary', method: 'GET', grammar: 'where', usage: 'get dictionary [where format=json]', summary: 'The node\'s variables (AnyLog\'s dictionary); secrets show ***.' },
  { name: 'get event log', method: 'GET', grammar: 'where', usage: 'get event log [where format=json]', summary: 'The last commands the node ran.' },
  { name: 'get error log', method: 'GET', grammar: 'where', usage: 'get error log [where format=json]', summary: 'The last errors commands and scripts met.' },
  { name: 'reset fork', method: 'POST', grammar: 'none', usage: 'reset fork', summary: 'Clears the fork this node detected (fork_detected in get status), once the incident is resolved; a replica whose source still shows another history reports it again at its next sync (set its ledger aside to follow that history).' },
  { name: 'reset error log', method: 'POST', grammar: 'none', usage: 'reset error log', summary: 'Empties the error log.' },
  { name: 'reset event log', method: 'POST', grammar: 'none', usage: 'reset event log', summary: 'Empties the event log.' },
  { name: 'get scheduler', method: 'GET', grammar: 'rest', usage: 'get scheduler [id]', summary: 'The schedulers started with `run scheduler`.' },
  { name: 'get databases', method: 'GET', grammar: 'where', usage: 'get databases [where format=json]', summary: 'The databases the node is connected to (the ledger store).' },
  { name: 'get tables', method: 'GET', grammar: 'where', usage: 'get tables where dbms = <name>', summary: 'The tables of a connected database (the ledger).' },
  { name: 'get license', method: 'GET', grammar: 'none', usage: 'get license', summary: 'ledgermesh needs no license key; prints its license.' },
  { name: 'blockchain seed from', method: 'POST', grammar: 'value', usage: 'blockchain seed from <ip:port>', summary: 'Brings the ledger from that node now (a member syncs it from its master).' },
  { name: 'blockchain reload metadata', method: 'POST', grammar: 'none', usage: 'blockchain reload metadata', summary: 'AnyLog reloads its ledger file; a ledgermesh replica is always current, so this only confirms the head.' },
  { name: 'create work directories', method: 'POST', grammar: 'none', usage: 'create work directories', summary: 'Creates the node\'s home directories (idempotent).' },
  { name: 'set anylog home', method: 'POST', grammar: 'value', usage: 'set anylog home <path>', summary: 'Records AnyLog\'s home path (the anylog_home variable); the node keeps its own --home.' },
  { name: 'trace level', method: 'POST', grammar: 'text', usage: 'trace level = <0-3> [command]', summary: 'Sets the log level: 0 info, 1 debug, 2 and 3 trace.' },
  { name: 'set echo queue', method: 'POST', grammar: 'value', usage: 'set echo queue <on|off>', summary: 'AnyLog queues echo messages; ledgermesh logs them: accepted, no effect.' },
  { name: 'set cli', method: 'POST', grammar: 'value', usage: 'set cli <on|off>', summary: 'AnyLog\'s console switch: accepted; the REPL is opened with --repl.' },
  { name: 'set exception traceback', method: 'POST', grammar: 'value', usage: 'set exception traceback <on|off>', summary: 'Logs errors with their stack (on) or without (off).' },
  { name: 'wait', method: 'GET', grammar: 'value', usage: 'wait <seconds>', summary: 'Pauses the script (at most 600 seconds).' },
  { name: 'info table', method: 'GET', grammar: 'text', usage: 'info table <dbms> <table> exists', summary: 'true when the table exists (the ledger table of the connected store).' },
  { name: 'set policy', method: 'GET', grammar: 'text', usage: 'set policy <var> [key][key]... = <value>', summary: 'Sets a field of the policy held in a variable, creating the variable and its keys as needed.' },
  { name: 'config from policy', method: 'POST', grammar: 'where', usage: 'config from policy where id = <policy id>', summary: 'Applies a config policy: its fields set node variables, its script list runs.' },
  { name: 'python', method: 'GET', grammar: 'text', usage: 'python <expression>', summary: 'Evaluates the string expressions AnyLog scripts use: !v.split(" ")[0], strip(), lower(), upper(), replace(), len(), +.' },
  { name: 'file test', method: 'GET', grammar: 'value', usage: 'file test <path>', summary: 'true when the path exists on this machine.' },
  { name: 'rest get', method: 'POST', grammar: 'where', usage: 'rest get where url = <url> [and timeout = <seconds>]', summary: 'Fetches a URL from the node (HTTP GET) and answers its body.' },
  { name: 'json', method: 'GET', grammar: 'value', usage: 'json <value>', summary: 'The value as JSON; an error when it is not JSON.' },
  { name: 'create policy', method: 'GET', grammar: 'policy-template', usage: 'create policy <type> [with defaults] [where key = value and ...]', summary: 'A new policy {"<type>": {...}} from the where pairs, as AnyLog makes it (assign it: x = create policy ...). With defaults: a master, operator, query or publisher gets AnyLog\'s ip, internal_ip, port and rest_port where missing; a cluster gets status "active" and must have a new name; an operator must name an existing cluster and gets an unused member number.' },
  { name: 'from', method: 'GET', grammar: 'value-bring', usage: 'from <json value> bring[.format] [key][key] ...', summary: 'Picks fields out of a policy or a list of policies held in a variable.' }
]

/**
 * AnyLog commands of its data layer (ingestion, SQL, partitions, brokers, smart contracts)
 * and of its host tooling. ledgermesh keeps only the metadata ledger, so these are known,
 * parsed (the rest of the line is kept) and answered `not_supported`, naming the command;
 * a script notes the line and goes on (src/commands/data-layer.ts).
 */
export const NOT_SUPPORTED_COMMANDS: readonly string[] = [
  'run msg client', 'get msg client', 'run mqtt client', 'run kafka consumer', 'run message broker',
  'run streamer', 'run data distributor', 'run data consumer', 'run mcp server', 'run blobs archiver',
  'run grpc client', 'run opcua client', 'run plc client', 'run smtp client', 'run publisher',
  'run video stream', 'video connect', 'get opcua struct', 'get streaming', 'get operator',
  'set buffer threshold', 'set function params', 'import function', 'set aggregation', 'partition',
  'schedule', 'sql', 'get data nodes', 'get columns', 'get rows count', 'bucket provider connect',
  'blockchain connect to', 'blockchain set account info', 'blockchain deploy contract', 'get platforms',
  'set internal ip with', 'id sign', 'get private key', 'system'
]

/**
 * The first words of every command of AnyLog's language (its command table; `get`, `set`,
 * `blockchain` and a few others take a sub-command after them), so that a line ledgermesh
 * does not run can be told from text: AnyLog runs `x = <words>` as a command when the words
 * start with one of these, and assigns the text otherwise. `words` is the fewest words,
 * `x =` included, that AnyLog needs to take the line for that command.
 */
export const ANYLOG_COMMAND_HEADS: ReadonlyArray<{ head: string, words?: number }> = [
  ...['bucket', 'video', 'connect dbms', 'id', 'pi', 'debug', 'disconnect dbms', 'info view', 'info table',
    'sql', 'create work directories', 'create table', 'create view', 'drop dbms', 'drop table',
    'drop partition', 'backup', 'event', 'time file', 'from', 'blockchain', 'suggest create',
    'generate insert from json', 'system', 'delete archive', 'if', 'else', 'do', 'run streamer',
    'run uns streamer', 'run grpc client', 'run msg client', 'flush buffers', 'mqtt', 'run message broker',
    'run scheduled pull', 'run kafka consumer', 'email', 'sms', 'run smtp client', 'run client', 'file',
    'directory', 'process', 'thread', 'incr', 'partition', 'task', 'query', 'job', 'schedule',
    'run scheduler', 'run blockchain sync', 'run operator', 'run blobs archiver', 'print', 'echo', 'get',
    'reset', 'set', 'python', 'monitor', 'json', 'random substr', 'trace level', 'help', 'end script',
    'goto', 'call', 'on error', 'return', 'stop', 'next', 'streaming data', 'test'].map(head => ({ head })),
  { head: 'import function', words: 13 }, { head: 'config from policy', words: 7 }, { head: 'drop network table', words: 11 },
  { head: 'subprocess', words: 2 }, { head: 'rest', words: 6 }, { head: 'run video stream', words: 7 },
  { head: 'run rest server', words: 5 }, { head: 'run opcua client', words: 7 }, { head: 'run plc client', words: 7 },
  { head: 'run tcp server', words: 5 }, { head: 'stream', words: 2 }, { head: 'wait', words: 2 },
  { head: 'create policy', words: 5 }, { head: 'trace method', words: 4 }, { head: 'exit', words: 2 },
  { head: 'continuous', words: 2 }
]

/**
 * The AnyLog command a run of words starts (as AnyLog matches it: the shortest head
 * first), or undefined when AnyLog would take the words for text. `words` counts the
 * words of the whole line, `x =` included.
 */
export function anylogCommandHead (lowerWords: readonly string[], lineWords: number): string | undefined {
  for (let n = 1; n <= Math.min(4, lowerWords.length); n++) {
    const head = lowerWords.slice(0, n).join(' ')
    const found = ANYLOG_COMMAND_HEADS.find(h => h.head === head)
    if (found !== undefined && (found.words === undefined || lineWords >= found.words)) return found.head
  }
  return undefined
}

const ALL_COMMANDS: readonly CommandSpec[] = [
  ...COMMANDS,
  ...NOT_SUPPORTED_COMMANDS.map((name): CommandSpec => ({ name, method: 'POST', grammar: 'text', usage: `${name} ...`, summary: 'AnyLog data-layer or host command: answered not_supported.' }))
]

const BY_NAME = new Map(ALL_COMMANDS.map(spec => [spec.name, spec]))

export function commandSpec (name: string): CommandSpec | undefined {
  return BY_NAME.get(name)
}

/** Every command the parser knows: the catalog and the ones answered not_supported. */
export function knownCommands (): readonly CommandSpec[] {
  return ALL_COMMANDS
}
