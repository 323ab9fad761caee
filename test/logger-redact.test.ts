import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createLogger, redactFields } from '../src/base/logger.js'
import { tmpDir } from './helpers/tmp.js'

const KEYS = new Set(['password', 'DB_PASSWD', 'token'])

t.test('redactFields masks secret-named fields at the top and one or two levels down, and nowhere else', async t => {
  const error = Object.assign(new Error('boom'), { token: 'e1' })
  const input = {
    password: 'p0',
    seq: 7,
    env: { DB_PASSWD: 'p1', NODE_NAME: 'm1' },
    list: [{ token: 'p2' }, 'plain'],
    deep: { a: { password: 'p3' } },
    deeper: { a: { b: { password: 'kept: three levels down' } } },
    buffer: Buffer.from('password'),
    err: error
  }
  const shown = redactFields(input, KEYS)
  t.equal(shown.password, '***')
  t.same(shown.env, { DB_PASSWD: '***', NODE_NAME: 'm1' })
  t.same(shown.list, [{ token: '***' }, 'plain'])
  t.same(shown.deep, { a: { password: '***' } })
  t.equal(shown.deeper.a.b.password, 'kept: three levels down', 'the walk stops two levels down, as the redaction paths did')
  t.equal(shown.buffer, input.buffer, 'a Buffer is not walked')
  t.ok(shown.err instanceof Error, 'an error stays an error')
  t.equal((shown.err as Error & { token: string }).token, '***')
  t.equal(shown.err.message, 'boom')
  t.equal(input.password, 'p0', 'the logged object itself is not changed')
  t.equal(input.env.DB_PASSWD, 'p1')
  t.equal(error.token, 'e1')
  const clean = { id: 'x', seq: 1, nested: { a: 1 } }
  t.equal(redactFields(clean, KEYS), clean, 'an object with nothing to mask is passed through, not copied')
})

t.test("a node's logger writes no secret-named field", async t => {
  const file = join(await tmpDir(t), 'node.log')
  const log = createLogger({ name: 'n', role: 'master', level: 'info', file, secretKeys: ['MY_KEY'] })
  log.info({ env: { MY_KEY: 'hidden-1', REST_TOKEN: 'hidden-2' }, db: { password: 'hidden-3' } }, 'config loaded')
  log.flush()
  const text = readFileSync(file, 'utf8')
  t.notMatch(text, /hidden-/)
  t.match(text, /"MY_KEY":"\*\*\*"/)
})
