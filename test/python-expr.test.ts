import t from 'tap'
import { evalPython } from '../src/commands/python-expr.js'

const vars: Record<string, unknown> = { '!version': 'EdgeLake Version: 1.3', '!conn': '10.0.0.1:32048', '!name': '  Edge Node  ', $HOME: '/root' }
const py = (expr: string): unknown => evalPython(expr, ref => vars[ref])

t.test('the string expressions AnyLog scripts use', async t => {
  t.equal(py('!version.split(" ")[0]'), 'EdgeLake')
  t.equal(py('!conn.split(":")[0]'), '10.0.0.1')
  t.equal(py('!conn.split(":")[-1]'), '32048')
  t.equal(py('int(!conn.split(":")[1]) + 1'), 32049)
  t.equal(py('!name.strip().lower().replace(" ", "_")'), 'edge_node')
  t.equal(py('!conn[0:4]'), '10.0')
  t.equal(py('len(!conn)'), 14)
  t.equal(py('"-".join(["a", "b"])'), 'a-b')
  t.equal(py('$HOME + "/x"'), '/root/x')
  t.equal(py('!version.startswith("Edge")'), true)
  t.same(py('!conn.rsplit(".", 1)'), ['10.0.0', '1:32048'])
})

t.test('anything beyond them is refused with not_supported, and nothing runs', async t => {
  for (const expr of ['__import__("os").system("id")', 'open("/etc/passwd")', '!conn.__class__', '[x for x in "ab"]', 'eval("1")', '!conn.encode()']) {
    t.throws(() => py(expr), { code: 'not_supported' }, expr)
  }
  t.throws(() => py('!missing.upper()'), { code: 'bad_command', message: /!missing is not defined/ })
  t.throws(() => py('!conn[99]'), { code: 'bad_command', message: /out of range/ })
  t.throws(() => py('"a" + 1'), { code: 'bad_command', message: /cannot add/ })
})
