import t from 'tap'
import { readFileSync } from 'node:fs'
import { parseScript, parseScriptLines, parseCommandLine, COMMANDS, type CommandStatement } from '../src/commands/index.js'
import { LedgerMeshError } from '../src/base/errors.js'

/** The tree without positions, for readable comparisons. */
const strip = (value: unknown): unknown => JSON.parse(JSON.stringify(value, (k, v) => k === 'pos' ? undefined : v))
const cmd = (text: string): CommandStatement => parseCommandLine(text)

function parseError (text: string): LedgerMeshError {
  try { parseScript(text) } catch (err) { if (err instanceof LedgerMeshError) return err; throw err }
  throw new Error(`expected ${JSON.stringify(text)} to fail`)
}

t.test('every catalog command parses with its grammar', async t => {
  const examples: Record<string, string> = {
    'get processes': 'get processes where format=json',
    'get status': 'get status',
    'get profiles': 'get profiles',
    'get hostname': 'get hostname',
    'get variables': 'get variables',
    'get version': 'get version',
    help: 'help blockchain get',
    echo: 'echo hello !x',
    'run tcp server': 'run tcp server where internal_ip = 127.0.0.1 and internal_port = 32048',
    'run rest server': 'run rest server where internal_ip=127.0.0.1 and internal_port=32049',
    'connect dbms': 'connect dbms blockchain where type=psql and ip=127.0.0.1 and port=5432 and user=postgres and password=x',
    'create table': 'create table ledger where dbms=blockchain',
    'run scheduler': 'run scheduler 1',
    'run blockchain sync': 'run blockchain sync where source=master and time=30 second and dest=file and connection=!ledger_conn',
    'blockchain prepare policy': 'blockchain prepare policy !new_policy',
    'blockchain insert': 'blockchain insert where policy=!new_policy and local=true and master=!ledger_conn',
    'blockchain get': 'blockchain get worker where name=w1',
    'blockchain delete policy': 'blockchain delete policy where id=abc',
    process: 'process /tmp/x.al',
    'exit node': 'exit node',
    print: 'print "Missing node type, cannot continue..."',
    'get node name': 'get node name',
    'set node name': 'set node name edge-master',
    'get dictionary': 'get dictionary where format = json',
    'get event log': 'get event log',
    'get error log': 'get error log where format = json',
    'reset error log': 'reset error log',
    'reset event log': 'reset event log',
    'get scheduler': 'get scheduler 1',
    'get databases': 'get databases',
    'get tables': 'get tables where dbms = blockchain',
    'get license': 'get license',
    'blockchain seed from': 'blockchain seed from 127.0.0.1:32048',
    'blockchain reload metadata': 'blockchain reload metadata',
    'create work directories': 'create work directories',
    'set anylog home': 'set anylog home !anylog_path',
    'trace level': 'trace level = 1',
    'set echo queue': 'set echo queue on',
    'set cli': 'set cli off',
    'set exception traceback': 'set exception traceback on',
    wait: 'wait 5',
    'info table': 'info table blockchain ledger exists',
    'set policy': 'set policy new_policy [config][name] = !config_name',
    'config from policy': 'config from policy where id = !config_id',
    python: 'python !version.split(" ")[0]',
    'file test': 'file test !local_scripts',
    'rest get': 'rest get where url = https://ipinfo.io/json',
    json: 'json !new_policy',
    from: 'from !new_policy bring [*]',
    'create policy': 'create policy cluster with defaults where company = !company_name and name = !cluster_name',
    'blockchain prove': 'blockchain prove where id = !policy_id and size = 120',
    'blockchain prove consistency': 'blockchain prove consistency where first = 64 and second = 120',
    'blockchain prove state': 'blockchain prove state where id = !policy_id',
    'get checkpoint': 'get checkpoint',
    'reset fork': 'reset fork',
    'run allocator': 'run allocator',
    'run operator': 'run operator',
    'worker drain': 'worker drain',
    'worker resume': 'worker resume',
    'slave drain': 'slave drain',
    'slave resume': 'slave resume',
    'create join token': 'create join token where ttl = 1 hour and uses = 10',
    'admit node': `admit node where key = ${'ab'.repeat(32)} and name = w3`,
    'revoke node': `revoke node where key = ${'ab'.repeat(32)} and reason = "lost laptop"`,
    'approve master': `approve master where key = ${'cd'.repeat(32)}`
  }
  for (const spec of COMMANDS) {
    t.ok(examples[spec.name], `an example for ${spec.name}`)
    t.equal(cmd(examples[spec.name]).name, spec.name)
  }
  t.equal(cmd('GET STATUS').name, 'get status', 'command words are case-insensitive')
})

t.test('where values: references, multi-word values, quoted strings', async t => {
  const sync = cmd('run blockchain sync where source=master and time=30 second and connection=!ledger_conn')
  t.same(strip(sync.where), [
    { key: 'source', value: { kind: 'literal', text: 'master' } },
    { key: 'time', value: { kind: 'concat', parts: [{ kind: 'literal', text: '30' }, { kind: 'literal', text: ' ' }, { kind: 'literal', text: 'second' }] } },
    { key: 'connection', value: { kind: 'var', name: 'ledger_conn' } }
  ])
  t.same(strip(cmd('echo !ip:!port.int').rest), [{ kind: 'concat', parts: [{ kind: 'var', name: 'ip' }, { kind: 'literal', text: ':' }, { kind: 'var', name: 'port', cast: 'int' }] }])
  t.same(strip(cmd('blockchain get worker where name = "my node"').query!.where), { kind: 'cmp', field: 'name', op: '=', value: { kind: 'literal', text: 'my node' } })
})

t.test('blockchain get: type lists, conditions with precedence, bring', async t => {
  const q = cmd('blockchain get worker where company = "my co" and (port > 3000 or city = Paris) bring.table [worker][name] [worker][port]').query!
  t.same(q.types, ['worker'])
  t.match(q.where, { kind: 'and', terms: [{ kind: 'cmp', field: 'company' }, { kind: 'or', terms: [{ op: '>' }, { field: 'city' }] }] })
  t.same(q.bring, { format: 'table', items: [{ kind: 'path', type: 'worker', field: 'name' }, { kind: 'path', type: 'worker', field: 'port' }] })
  t.same(cmd('blockchain get (master, worker) bring [*][name] separator=,').query, { types: ['master', 'worker'], bring: { format: 'default', items: [{ kind: 'path', type: '*', field: 'name' }], separator: ',' } })
  t.same(cmd('blockchain get worker bring.count').query!.bring, { format: 'count', items: [] })
  t.match(cmd('blockchain get a where x=1 or y=2 and z=3').query!.where, { kind: 'or', terms: [{ field: 'x' }, { kind: 'and' }] }, 'and binds tighter than or')
  t.same(cmd('blockchain get * bring [m][ip] ":" [m][port] separator="\\n"').query!.bring, { format: 'default', items: [{ kind: 'path', type: 'm', field: 'ip' }, { kind: 'literal', text: ':' }, { kind: 'path', type: 'm', field: 'port' }], separator: '\n' })
})

t.test('assignments, multi-line JSON with references, bare values, comments', async t => {
  const script = [
    '# a comment',
    'x = 5',
    'sync_time = 30 second   # trailing comment',
    'h = get hostname',
    '<new_policy = {"master": {',
    '    "name": !node_name,',
    '    "port": !port.int,',
    '    "note": "a # is not a comment, !x is text"',
    '}}>',
    '!x',
    '$HOME'
  ].join('\n')
  const statements = parseScript(script)
  t.same(statements.map(s => s.kind), ['assign', 'assign', 'assign', 'assign', 'value', 'value'])
  t.match(statements[1], { name: 'sync_time', value: { kind: 'literal', text: '30 second' } })
  t.match(statements[2], { name: 'h', value: { kind: 'command', name: 'get hostname' } })
  const json = statements[3]
  t.equal(json.kind === 'assign' && json.value.kind === 'json', true)
  if (json.kind === 'assign' && json.value.kind === 'json') {
    t.same(json.value.refs.map(r => [r.ref, r.inString]), [[{ kind: 'var', name: 'node_name' }, false], [{ kind: 'var', name: 'port', cast: 'int' }, false], [{ kind: 'var', name: 'x' }, true]])
    t.match(json.pos, { line: 5, column: 2 }, 'the statement starts after the <')
  }
})

t.test('if: single statements, blocks, else, conditions', async t => {
  const [a, b, c] = parseScript([
    'if (!x > 3) then echo big',
    'if (!is_declared == 0 and not !flag) {',
    '    echo one',
    '    echo two',
    '} else {',
    '    echo three',
    '}',
    'if !name is not empty then echo named'
  ].join('\n'))
  t.match(a, { kind: 'if', condition: { kind: 'cmp', op: '>' }, then: [{ name: 'echo' }] })
  t.match(b, { kind: 'if', condition: { kind: 'and', terms: [{ op: '==' }, { kind: 'not' }] } })
  t.equal(b.kind === 'if' && b.then.length, 2)
  t.equal(b.kind === 'if' && b.else?.length, 1)
  t.match(c, { condition: { kind: 'cmp', op: 'is not', right: { text: 'empty' } } })
})

t.test('create policy: a type, with defaults, where pairs', async t => {
  t.match(cmd('create policy cluster with defaults where company = "New Company" and name = c1'), { name: 'create policy', value: { text: 'cluster' }, withDefaults: true, where: [{ key: 'company' }, { key: 'name' }] })
  t.match(cmd('create policy master'), { value: { text: 'master' }, where: [] })
  t.equal(cmd('create policy master').withDefaults, undefined)
  t.match(parseError('create policy cluster with name = c1').message, /create policy: expected 'defaults' after 'with'/)
  t.match(parseError('create policy cluster where').message, /expected a key after 'where'/)
  const [assigned] = parseScript('new_policy = create policy cluster with defaults where company=!company_name and name=!cluster_name')
  t.match(assigned, { kind: 'assign', name: 'new_policy', value: { kind: 'command', name: 'create policy', withDefaults: true } }, 'assigned, it is a command, not text')
})

t.test('x = <words>: AnyLog commands are commands, other words are text', async t => {
  const lines = parseScriptLines([
    'a = get cluster info where name = c1',
    'b = drop table t1 where dbms = d1',
    'c = hello world',
    'd = debug',
    'e = 30 seconds'
  ].join('\n'))
  t.match(lines[0], { kind: 'invalid', error: { code: 'unknown_command', details: { anylog_command: 'get' } } })
  t.match((lines[0] as any).error.message, /'get cluster info' is an AnyLog command that ledgermesh does not run/)
  t.match(lines[1], { kind: 'invalid', error: { details: { anylog_command: 'drop table' } } })
  t.match(lines[2], { kind: 'assign', value: { kind: 'literal', text: 'hello world' } })
  t.match(lines[3], { kind: 'assign', value: { kind: 'literal', text: 'debug' } }, 'one word stays a value')
  t.match(lines[4], { kind: 'assign', value: { kind: 'literal', text: '30 seconds' } })
  t.match(parseError('incr x 3'), { code: 'unknown_command', details: { anylog_command: 'incr' } })
  t.equal(parseError('frobnicate now').details.anylog_command, undefined)
})

t.test('a then/do/else statement that does not parse fails only when it runs', async t => {
  const [line, doLine] = parseScriptLines('if !node_type == publisher then edgelake-error\ndo set policy p')
  t.match(line, { kind: 'if', then: [{ kind: 'invalid', error: { code: 'unknown_command' } }] })
  t.match(doLine, { kind: 'do', body: { kind: 'invalid', error: { code: 'bad_command' } } })
  t.match(parseError('if !x == 1 then edgelake-error').message, /unknown command 'edgelake-error'/, 'REPL and REST still refuse the line')
})

t.test('the shipped start-up scripts parse', async t => {
  for (const role of ['master', 'slave', 'worker', 'member']) {
    const statements = parseScript(readFileSync(new URL(`../scripts/${role}.al`, import.meta.url), 'utf8'))
    t.ok(statements.length > 20, role)
    t.ok(statements.some(s => s.kind === 'if'), `${role} declares itself under an if`)
  }
})

t.test('errors name the command, the position and what was expected', async t => {
  const cases: Array<[string, string, number, number, RegExp]> = [
    ['frobnicate now', 'unknown_command', 1, 1, /unknown command 'frobnicate now'/],
    ['x = 1\nblockchain get where', 'bad_command', 2, 16, /blockchain get: expected a policy type, found 'where'/],
    ['blockchain get worker where name', 'bad_command', 1, 33, /expected a comparison/],
    ['blockchain get worker where (name = x', 'bad_command', 1, 38, /expected '\)'/],
    ['blockchain get worker bring.sum', 'bad_command', 1, 23, /unknown bring format '\.sum'/],
    ['get status now', 'bad_command', 1, 12, /get status: expected 'where'/],
    ['exit node please', 'bad_command', 1, 11, /exit node: expected nothing more/],
    ['run scheduler', 'bad_command', 1, 14, /run scheduler: expected a value/],
    ['blockchain insert where policy', 'bad_command', 1, 31, /expected '=' after 'policy'/],
    ['<p = {"a": 1', 'bad_command', 1, 1, /unclosed '<'/],
    ['x = {"a": [1, 2}', 'bad_command', 1, 5, /unbalanced JSON/],
    ['echo "open', 'bad_command', 1, 6, /unterminated string/],
    ['if (!x == 1) {\n echo a', 'bad_command', 1, 14, /unclosed block/],
    ['}', 'bad_command', 1, 1, /unexpected '\}'/]
  ]
  for (const [text, code, line, column, message] of cases) {
    const err = parseError(text)
    t.equal(err.code, code, text)
    t.match(err.message, message, text)
    t.same([err.details.line, err.details.column], [line, column], `${text}: position`)
    t.match(err.message, `line ${line}, column ${column}`)
  }
})

t.test('a REST command text that comes again is parsed once: the same frozen statements come back, a bad one throws every time', async t => {
  const { parseScriptCached } = await import('../src/commands/parser.js')
  const text = 'blockchain insert where policy = !p and local = true and master = !ledger_conn'
  const once = parseScriptCached(text, { source: 'command header' })
  const first = parseScriptCached(text, { source: 'command header' })
  t.not(first, once, 'seen once, it was parsed and not kept')
  t.equal(parseScriptCached(text, { source: 'command header' }), first, 'the third parse is the second one')
  t.same(first, parseScript(text, { source: 'command header' }), 'what parseScript makes of it')
  t.ok(Object.isFrozen(first) && Object.isFrozen(first[0]), 'frozen: running it cannot change what the next request runs')
  t.throws(() => { (first[0] as { kind: string }).kind = 'value' }, TypeError)
  for (let i = 0; i < 3; i++) t.throws(() => parseScriptCached('blockchain get policy where', { source: 'command header' }), { code: 'bad_command' })
  // texts seen once (a query naming a different value each time) never push a kept one out
  for (let i = 0; i < 600; i++) parseScriptCached(`get status where n = ${i}`)
  t.equal(parseScriptCached(text, { source: 'command header' }), first, 'still kept after 600 texts seen once')
  // many distinct texts that repeat: the cache stays bounded and the oldest is parsed anew
  for (let i = 0; i < 600; i++) for (let k = 0; k < 2; k++) parseScriptCached(`get status where m = ${i}`)
  t.not(parseScriptCached(text, { source: 'command header' }), first, 'forgotten past the bound, parsed again')
})

t.test('the event log keeps the last commands, oldest first, formatted when listed', async t => {
  const { CommandLog } = await import('../src/commands/command-log.js')
  const log = new CommandLog(3)
  t.same(log.list(), [], 'empty')
  const before = Date.now()
  for (let i = 1; i <= 5; i++) log.add('rest', i, `get status ${i}`)
  log.add('error', 0, 'x'.repeat(600))
  const listed = log.list()
  t.same(listed.map(e => [e.where, e.text.slice(0, 12)]), [['rest:4', 'get status 4'], ['rest:5', 'get status 5'], ['error', 'xxxxxxxxxxxx']], 'the last three, a line named only when there is one')
  t.equal(listed[2]!.text.length, 500, 'a long text is cut')
  t.ok(listed.every(e => Date.parse(e.time) >= before - 1000 && /Z$/.test(e.time)), 'ISO times')
  log.clear()
  t.same(log.list(), [], 'cleared')
  log.add('rest', 7, 'get status 7')
  t.same(log.list().map(e => e.where), ['rest:7'], 'fills again after a clear')
})
