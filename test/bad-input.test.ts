import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI, POLYFILL, ROOT, startNode } from './helpers/node-process.js'
import { createTestDatabase, pgQuery } from './helpers/pg.js'

/**
 * The bad-input corpus (test/fixtures/bad-input/, see its README): every case is refused with
 * a status, an error code and a message that names the problem; after each one the node still
 * answers /health, and at the end its ledger head and its PostgreSQL table are unchanged.
 */

interface Expect { status: number, error: string | null, message: string | null }
interface HttpCase {
  name: string
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE'
  path?: string
  command?: string
  query?: string
  headers?: Record<string, string>
  token?: boolean
  body?: string
  body_base64?: string
  expect: Expect
}
interface EnvCase { name: string, env?: string, env_base64?: string, expect: { exit_code: number, message: string, not_shown?: string[] } }
interface InjectionCase { name: string, body: string, stored: boolean, expect?: Expect }

const FIXTURES = join(ROOT, 'test', 'fixtures', 'bad-input')
const load = <T>(file: string): T[] => (JSON.parse(readFileSync(join(FIXTURES, file), 'utf8')) as { cases: T[] }).cases

/** `${text*N}` stands for N copies of text: deep nesting and oversized values stay readable. */
const expand = (text: string): string => text.replace(/\$\{(.+?)\*(\d+)\}/gs, (_m, unit: string, n: string) => unit.repeat(Number(n)))
const bodyOf = (c: { body?: string, body_base64?: string }): string | Buffer | undefined =>
  c.body_base64 !== undefined ? Buffer.from(c.body_base64, 'base64') : c.body === undefined ? undefined : expand(c.body)

const policies = load<HttpCase>('policies.json')
const commands = load<HttpCase>('commands.json')
const rest = load<HttpCase>('rest.json')
const envs = load<EnvCase>('env.json')
const injections = load<InjectionCase>('injection.json')

t.test('the corpus holds at least 50 cases, each named once', async t => {
  const names = [...policies, ...commands, ...rest, ...envs, ...injections].map(c => c.name)
  t.ok(names.length >= 50, `${names.length} cases`)
  t.equal(new Set(names).size, names.length, 'case names are unique')
})

const TOKEN = 'bad-input-token'
const db = await createTestDatabase(t)
const master = await startNode(t, {
  type: 'master',
  name: 'bad-input-m',
  env: { REST_TOKEN: TOKEN, DB_TYPE: 'psql', DB_IP: db.host, DB_PORT: db.port, DB_USER: db.user, DB_NAME: db.database }
})
const auth = { authorization: `Bearer ${TOKEN}` }
const ledgerRows = async (): Promise<number> => Number((await pgQuery<{ n: string }>(db, 'SELECT count(*) AS n FROM ledger'))[0].n)

async function request (c: HttpCase, defaults: { path: string, headers: Record<string, string> }): Promise<{ status: number, text: string }> {
  const query = c.query === undefined ? '' : `?command=${encodeURIComponent(c.query)}`
  const headers: Record<string, string> = { ...defaults.headers, ...(c.token === true ? auth : {}) }
  for (const [key, value] of Object.entries(c.headers ?? {})) headers[key] = expand(value)
  if (c.command !== undefined) headers.command = expand(c.command)
  const response = await fetch(master.url + expand(c.path ?? defaults.path) + query, {
    method: c.method ?? 'GET',
    headers,
    body: bodyOf(c),
    signal: AbortSignal.timeout(20_000)
  })
  return { status: response.status, text: await response.text() }
}

function checkReply (t: Test, c: { name: string, expect?: Expect }, reply: { status: number, text: string }): void {
  const expect = c.expect!
  t.equal(reply.status, expect.status, `${c.name}: status ${expect.status}`)
  if (expect.error === null) return
  let body: { error?: string, message?: string } = {}
  try { body = JSON.parse(reply.text) } catch { t.fail(`${c.name}: the reply is JSON`, { text: reply.text.slice(0, 300) }) }
  t.equal(body.error, expect.error, `${c.name}: error ${expect.error}`, { message: body.message })
  t.ok(typeof body.message === 'string' && body.message.length >= 10, `${c.name}: a message that says something`, { message: body.message })
  if (expect.message !== null && expect.message !== '') t.match(body.message, new RegExp(expect.message), `${c.name}: the message names the problem`)
}

async function stillAnswers (t: Test, after: string): Promise<void> {
  const health = await fetch(`${master.url}/health`, { signal: AbortSignal.timeout(10_000) })
  if (health.status !== 200) t.fail(`/health after ${after}: ${health.status} ${await health.text()}`)
}

t.test('every bad policy, command and request is refused and the node keeps answering', async t => {
  const before = (await (await fetch(`${master.url}/v1/ledger/head`)).json()) as { seq: number, hash: string }
  const rowsBefore = await ledgerRows()
  t.equal(rowsBefore, before.seq, 'the PostgreSQL table holds the ledger')

  const groups: Array<[string, HttpCase[], { path: string, headers: Record<string, string> }]> = [
    ['policies.json', policies, { path: '/v1/policies', headers: { 'content-type': 'application/json', ...auth } }],
    ['commands.json', commands, { path: '/', headers: { 'User-Agent': 'AnyLog/1.23', ...auth } }],
    ['rest.json', rest, { path: '/', headers: {} }]
  ]
  for (const [file, cases, defaults] of groups) {
    t.test(file, async t => {
      for (const c of cases) {
        checkReply(t, c, await request({ method: file === 'policies.json' ? 'POST' : undefined, ...c }, defaults))
        await stillAnswers(t, c.name)
      }
    })
  }
  t.test('nothing was stored', async t => {
    const after = (await (await fetch(`${master.url}/v1/ledger/head`)).json()) as { seq: number, hash: string }
    t.same({ seq: after.seq, hash: after.hash }, { seq: before.seq, hash: before.hash }, 'the ledger head did not move')
    t.equal(await ledgerRows(), rowsBefore, 'the PostgreSQL ledger table has the same rows')
    t.equal(master.exitCode, undefined, 'the node process is still running')
  })
})

t.test('SQL-looking values are stored as data on PostgreSQL, never run', async t => {
  for (const c of injections) {
    const reply = await request({ ...c, method: 'POST' }, { path: '/v1/policies', headers: { 'content-type': 'application/json', ...auth } })
    if (!c.stored) {
      checkReply(t, c, reply)
      continue
    }
    t.equal(reply.status, 201, `${c.name}: stored`, { text: reply.text })
    const { id } = JSON.parse(reply.text) as { id: string }
    const sent = JSON.parse(c.body) as Record<string, Record<string, unknown>>
    const [type] = Object.keys(sent)
    const back = (await (await fetch(`${master.url}/v1/policies/${id}`)).json()) as Record<string, Record<string, unknown>>
    t.match(back[type], sent[type], `${c.name}: read back exactly as sent`)
    const [row] = await pgQuery<{ policy: Record<string, Record<string, unknown>> }>(db, 'SELECT policy FROM ledger WHERE policy_id = $1', [id])
    t.match(row.policy[type], sent[type], `${c.name}: the PostgreSQL row holds the value as data`)
  }
  const head = (await (await fetch(`${master.url}/v1/ledger/head`)).json()) as { seq: number }
  t.equal(await ledgerRows(), head.seq, 'every table is still there and the row count matches the head')
  t.equal(Number((await pgQuery<{ seq: string }>(db, 'SELECT seq FROM ledger_head WHERE id = 1'))[0].seq), head.seq)
  await stillAnswers(t, 'the injection cases')
})

t.test('bad env files: the node refuses to start, exit code 2, and names the key', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'lm-bad-env-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const run = async (c: EnvCase, i: number): Promise<{ code: number | null, stderr: string }> => {
    const file = join(dir, `case-${i}.env`)
    writeFileSync(file, c.env_base64 !== undefined ? Buffer.from(c.env_base64, 'base64') : c.env ?? '')
    const child = spawn(process.execPath, ['--import', POLYFILL, CLI, 'start', '--config', file, '--home', join(dir, `home-${i}`)], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' }
    })
    let stderr = ''
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    const code = await new Promise<number | null>(resolve => child.once('exit', resolve))
    clearTimeout(timer)
    return { code, stderr }
  }
  // Two at a time: each case is a node process that exits at its config check.
  for (let i = 0; i < envs.length; i += 2) {
    const batch = envs.slice(i, i + 2)
    const results = await Promise.all(batch.map(async (c, j) => await run(c, i + j)))
    batch.forEach((c, j) => {
      t.equal(results[j].code, c.expect.exit_code, `${c.name}: exit code ${c.expect.exit_code}`, { stderr: results[j].stderr })
      t.match(results[j].stderr, /ledgermesh: config error: /, `${c.name}: a config error`)
      t.match(results[j].stderr, new RegExp(c.expect.message), `${c.name}: names the problem`)
      for (const secret of c.expect.not_shown ?? []) t.notOk(results[j].stderr.includes(secret), `${c.name}: does not show ${secret.slice(0, 4)}…`)
    })
  }
})
