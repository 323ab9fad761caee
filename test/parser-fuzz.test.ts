import t from 'tap'
import fc from 'fast-check'
import { parseScript } from '../src/commands/parser.js'
import { LedgerMeshError } from '../src/base/errors.js'

const RUNS = process.env.TORTURE === '1' ? 200_000 : 3000

/** Parsing returns statements or throws a LedgerMeshError with a parse code: nothing else. */
function parsesOrFailsCleanly (text: string): boolean {
  try {
    parseScript(text)
    return true
  } catch (err) {
    return err instanceof LedgerMeshError && (err.code === 'bad_command' || err.code === 'unknown_command')
  }
}

const pieces = fc.constantFrom(
  'blockchain', 'get', 'insert', 'where', 'and', 'or', 'bring', 'bring.count', 'bring.table', 'separator=,',
  '(', ')', ',', '=', '==', '!=', '<', '>', '<=', '{', '}', '[', ']', '[*]', '[name]', '"', "'", '!x', '!x.int',
  '$HOME', '#', '\n', ' ', 'if', 'then', 'else', 'not', 'is', 'empty', '{"a": !b}', 'worker', 'x = 1', '<', '>',
  'run tcp server', 'exit node', 'process', 'help', '\\', 'prepare policy'
)

t.test('arbitrary text never crashes or hangs the parser', async t => {
  fc.assert(fc.property(fc.string({ maxLength: 200 }), parsesOrFailsCleanly), { numRuns: RUNS })
  t.pass(`${RUNS} random strings`)
})

t.test('token soups built from the grammar never crash or hang the parser', async t => {
  fc.assert(fc.property(fc.array(pieces, { maxLength: 40 }).map(parts => parts.join(' ')), parsesOrFailsCleanly), { numRuns: RUNS })
  t.pass(`${RUNS} token soups`)
})

t.test('deep nesting is refused with a clear error, not a stack overflow', async t => {
  const deep = 'blockchain get a where ' + '('.repeat(10_000) + 'x=1' + ')'.repeat(10_000)
  t.throws(() => parseScript(deep), { code: 'bad_command', message: /nest deeper than 64/ })
  const ifs = 'if (' + '('.repeat(5000) + '!x' + ')'.repeat(5000) + ') then echo a'
  t.throws(() => parseScript(ifs), { code: 'bad_command', message: /nest deeper than 64/ })
})
