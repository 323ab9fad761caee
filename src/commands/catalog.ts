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
  { name: 'get profiles', method: 'GET', grammar: 'where', usage: 'get profiles [where format=json]', summary: 'Profiles: on a worker its processes (state, pid, restarts, uptime); on a slave where each runs; on the master where each is assigned.' },
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
  { name: 'blockchain delete policy', method: 'POST', grammar: 'where', usage: 'blockchain delete policy where id=<policy id>', summary: 'Deletes a policy from the ledger.' },
  { name: 'run allocator', method: 'POST', grammar: 'none', usage: 'run allocator', summary: 'Master: assigns sub-accounts to slaves and profiles to workers, and keeps the workers\' leases.' },
  { name: 'run operator', method: 'POST', grammar: 'none', usage: 'run operator', summary: 'Worker: keeps the lease with the master and runs one process per assigned profile.' },
  { name: 'worker drain', method: 'POST', grammar: 'none', usage: 'worker drain', summary: 'Worker: moves this worker\'s profiles to other workers and takes no new ones.' },
  { name: 'worker resume', method: 'POST', grammar: 'none', usage: 'worker resume', summary: 'Worker: ends a drain; the worker takes profiles again.' },
  { name: 'create join token', method: 'POST', grammar: 'where', usage: 'create join token [where ttl = <duration, default 1 hour> and uses = <n, default 1>]', summary: 'Master: a token that admits up to `uses` nodes (JOIN_TOKEN in their env) until it expires.' },
  { name: 'admit node', method: 'POST', grammar: 'where', usage: 'admit node where key = <public key> [and name = <node name>]', summary: 'Master: admits a node\'s key by hand (and lifts a revocation of it).' },
  { name: 'revoke node', method: 'POST', grammar: 'where', usage: 'revoke node where key = <public key> [and reason = <text>]', summary: 'Master: the key may no longer sync, renew its lease or write; its declarations are deleted and its profiles move once its lease lapses.' },
  { name: 'process', method: 'POST', grammar: 'value', usage: 'process <file>', summary: 'Runs a script file in the command language.' },
  { name: 'exit node', method: 'POST', grammar: 'none', usage: 'exit node', summary: 'Stops the node cleanly.' }
]

const BY_NAME = new Map(COMMANDS.map(spec => [spec.name, spec]))

export function commandSpec (name: string): CommandSpec | undefined {
  return BY_NAME.get(name)
}
