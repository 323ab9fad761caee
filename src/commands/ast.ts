import type { LedgerMeshError } from '../base/errors.js'

/**
 * The command language's syntax tree. Every way in (REPL, REST, start-up scripts, tests)
 * parses text into these nodes with `parseScript` and runs them with the one executor.
 *
 * Values keep their variable references: they are resolved when the statement runs, because
 * an earlier statement of the same script may change a variable.
 */

/** Where a node starts in its source text. line and column are 1-based. */
export interface Position {
  offset: number
  line: number
  column: number
}

/**
 * A cast written after a reference: `!port.int`, `$MEMBER.int`, `!company_name.name` (AnyLog's
 * name form: spaces to `_`, lower case), `!list.len` (a list's or a text's length).
 */
export type Cast = 'int' | 'float' | 'str' | 'bool' | 'json' | 'list' | 'name' | 'len'

export type ValueNode =
  /** A bare word or a quoted string, quotes removed. */
  | { kind: 'literal', text: string, pos: Position }
  /** `!name` or `!name.int`. */
  | { kind: 'var', name: string, cast?: Cast, pos: Position }
  /** `$NAME`: the node's env (its env file, its config, allow-listed process variables), then its variables. */
  | { kind: 'env', name: string, cast?: Cast, pos: Position }
  /** A word that mixes text and references, e.g. `!ip:!port` or `$HOME/data`: joined as text. */
  | { kind: 'concat', parts: ValueNode[], pos: Position }
  /**
   * AnyLog's `a + b + c` in an assignment: the parts joined as text, an undefined reference
   * counting as empty text (`!node_type.name + - + !company_name.name + -configs`).
   */
  | { kind: 'plus', parts: ValueNode[], pos: Position }
  /**
   * A JSON object or array as written, possibly with unquoted references in value positions
   * (`{"port": !port.int, "name": !name}`). `source` is the exact text; `refs` are the
   * references found outside JSON strings, in order, with their offsets relative to `source`.
   * The executor substitutes each with the JSON encoding of its value and parses the result.
   * References inside JSON strings ("...!x...") are substituted as text.
   */
  | { kind: 'json', source: string, refs: JsonRef[], pos: Position }

export interface JsonRef {
  /** offset of the `!` or `$` within `source` */
  start: number
  /** offset just past the reference (and its cast) within `source` */
  end: number
  ref: { kind: 'var' | 'env', name: string, cast?: Cast }
  /** true when the reference stands inside a JSON string: substitute as raw text */
  inString: boolean
}

/** `key = value` pairs of a `where` clause, joined by `and`. */
export interface WherePair {
  key: string
  value: ValueNode
  pos: Position
}

/** A `blockchain get` condition: comparisons joined by `and` / `or`, with parentheses. */
export type Condition =
  | { kind: 'cmp', field: string, op: CompareOp, value: ValueNode, pos: Position }
  | { kind: 'and', terms: Condition[] }
  | { kind: 'or', terms: Condition[] }

export type CompareOp = '=' | '!=' | '<' | '<=' | '>' | '>='

/** One item of a `bring` list: `[type][field]` (type may be `*`), or literal text between them. */
export type BringItem =
  | { kind: 'path', type: string, field: string }
  | { kind: 'literal', text: string }

export type BringFormat = 'default' | 'count' | 'unique' | 'json' | 'table' | 'first' | 'recent' | 'ip_port'

export interface GetQuery {
  /** Policy types asked for; `['*']` for every type. `blockchain get (master, worker)` gives two. */
  types: string[]
  /**
   * Set when a type is a reference (`blockchain get !node_type`, as AnyLog's scripts write):
   * every type as a value, resolved when the command runs.
   */
  typeValues?: ValueNode[]
  where?: Condition
  /** Absent when the command has no `bring`: the result is the policies themselves. */
  bring?: { format: BringFormat, items: BringItem[], separator?: string }
}

/** How a command's arguments are written after its words (see catalog.ts). */
export type ArgGrammar =
  /** nothing after the words */
  | 'none'
  /** an optional `where k = v and ...` */
  | 'where'
  /** one value: `run scheduler 1`, `blockchain prepare policy !p`, `process file` */
  | 'value'
  /** one value, then an optional where: `connect dbms blockchain where type=psql` */
  | 'value-where'
  /** the `blockchain get` query grammar */
  | 'query'
  /** one value, then `bring` and its paths: `from !p bring [config][name]` */
  | 'value-bring'
  /** a policy type, an optional `with defaults`, an optional where: `create policy cluster with defaults where name=c1` */
  | 'policy-template'
  /** the rest of the line as values (help topics, echo) */
  | 'rest'
  /** the rest of the line as written, for the command to read (`python <expr>`, AnyLog's data-layer commands) */
  | 'text'

export type Statement =
  | AssignStatement | CommandStatement | IfStatement | ValueStatement
  | LabelStatement | JumpStatement | OnErrorStatement | BranchStatement | InvalidStatement

/** `:name:` on a line of its own: where `goto name` and `call name` continue. */
export interface LabelStatement {
  kind: 'label'
  name: string
  pos: Position
}

/**
 * Script flow: `goto label`, `call label` (and `return` to the line after it), `end script`
 * (back to the script that ran this one) and `exit scripts` (stops the callers too).
 */
export interface JumpStatement {
  kind: 'jump'
  op: 'goto' | 'call' | 'return' | 'end script' | 'exit scripts'
  /** for goto and call */
  label?: string
  pos: Position
}

/**
 * `on error ignore | goto label | call label | end script`: what a script does when one of
 * its lines fails from here on. Without one, the script stops at the failing line.
 */
export interface OnErrorStatement {
  kind: 'on error'
  mode: 'ignore' | 'goto' | 'call' | 'end script'
  label?: string
  pos: Position
}

/**
 * `do <statement>` runs when the script's last `if` was true, `else <statement>` when it was
 * false (AnyLog keeps the last condition's result; `else if ...` chains through it).
 */
export interface BranchStatement {
  kind: 'do' | 'else'
  body: Statement
  pos: Position
}

/**
 * A line that does not parse. Scripts run line by line, as AnyLog runs them, so a bad line
 * fails when it is reached (and `on error` decides what follows); `ledgermesh check` lists them.
 */
export interface InvalidStatement {
  kind: 'invalid'
  error: LedgerMeshError
  text: string
  pos: Position
}

/** `name = value` or `<name = {...}>`. A value that is a command (`h = get hostname`) runs it. */
export interface AssignStatement {
  kind: 'assign'
  name: string
  /** a value, a command whose answer is kept, or `if cond` (AnyLog's `a = if not !a`: true or false) */
  value: ValueNode | CommandStatement | IfStatement
  pos: Position
}

export interface CommandStatement {
  kind: 'command'
  /** The catalog key, e.g. `blockchain get`: the command's words joined by one space. */
  name: string
  /** Set by grammars `value` and `value-where`. */
  value?: ValueNode
  /** Set by grammars `where` and `value-where` (empty when no where clause). */
  where: WherePair[]
  /** Set by grammar `query`; `value-bring` sets only its `bring` (types stay empty). */
  query?: GetQuery
  /** Set by grammar `rest`. */
  rest?: ValueNode[]
  /** Set by grammar `policy-template`: `with defaults` was given. */
  withDefaults?: boolean
  /** Set by grammar `text`: the rest of the line, trimmed. */
  raw?: string
  /** The statement's source text, for logs and errors. */
  text: string
  pos: Position
}

/**
 * `if cond then <statement>`, `if cond` (shows true or false; `do` and `else` lines follow
 * it), or `if (cond) { ... } else { ... }`. Every form sets the result `do`/`else` read.
 */
export interface IfStatement {
  kind: 'if'
  condition: IfCondition
  then: Statement[]
  else?: Statement[]
  /** `if cond` with no `then`: the statement shows the condition's result */
  showsResult?: boolean
  pos: Position
}

export type IfCondition =
  /** `!x == 5`, `!a != !b`, `!n > 3`, `!flag is true`, `!x is not empty` (op `is`/`is not`) */
  | { kind: 'cmp', left: ValueNode, op: CompareOp | '==' | 'is' | 'is not' | 'contains' | 'startswith' | 'endswith', right: ValueNode }
  /** a single value: true when it is defined, not empty, not "false" and not "0" */
  | { kind: 'truthy', value: ValueNode }
  | { kind: 'not', term: IfCondition }
  | { kind: 'and', terms: IfCondition[] }
  | { kind: 'or', terms: IfCondition[] }

/** A bare value such as `!x` or `$HOME`: shows its value (the REPL prints it). */
export interface ValueStatement {
  kind: 'value'
  value: ValueNode
  pos: Position
}
