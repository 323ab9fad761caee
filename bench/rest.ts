import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { verify } from 'node:crypto'
import { Pool } from 'undici'
import { openStore } from '../src/ledger/open-store.js'
import { loadOrCreateIdentity } from '../src/node/identity.js'
import { Ed25519Signer, publicKeyObject, type Signer } from '../src/policies/keys.js'
import type { Policy } from '../src/policies/policy.js'
import { preparePolicy, signingPayload } from '../src/policies/prepare.js'
import { startNode, type NodeProcess } from '../test/helpers/node-process.js'
import { createTestDatabase } from '../test/helpers/pg.js'
import { checkpointSigner } from '../test/helpers/checkpoints.js'
import { type Cleanup, cpuProfileArgs, envInt, envInts, fillStore, round, tempDir, waitQuiet, withCleanup } from './lib/harness.js'
import { type SequentialRun, latencyFigures, sequential } from './lib/sequential.js'

/**
 * REST as a user meets it: real `ledgermesh start` nodes (dist/, default LOG_LEVEL info) and
 * one keep-alive HTTP/1.1 client (undici's Client, one connection) sending AnyLog's requests
 * one after another, each waiting for its answer:
 *
 * - rest-insert: `POST /` with `command: blockchain insert where policy=!p and local=true and
 *   master=!ledger_conn` and the body `<p={"probe": {...}}>`, at the master on LevelDB, at a
 *   master on PostgreSQL, and at a member node (whose insert goes to the LevelDB master over
 *   libp2p), each with BENCH_REST_SIZES policies already on the ledger (default 1,000 and
 *   100,000; written to the store before the node starts, signed by the node's own key).
 *   Every answer is checked to say the policy was ordered (`global`).
 * - rest-query: `GET /` with `command: blockchain get probe where name = <a different name
 *   each call> bring.count` at a master holding 100,000 policies.
 * BENCH_REST_INSERTS (default 3,000) requests per row after the warm-up's (bench/lib/sequential.ts).
 */
export interface RestRow {
  bench: 'rest-insert' | 'rest-query' | 'rest-insert-concurrent'
  at: string
  store: 'level' | 'psql'
  policies_before: number
  requests: number
  per_s: number
  p50_ms: number
  p99_ms: number
  max_ms: number
  /** p99 of the warm-up requests (bench/lib/sequential.ts) */
  cold_p99_ms?: number
  goal?: string
}

export const INSERT_COMMAND = 'blockchain insert where policy=!p and local=true and master=!ledger_conn'

/** The probe policies on a benchmark ledger: the type the clients insert and query. */
function probe (i: number, tag: string, signer: Signer, now: Date): Policy {
  return preparePolicy({ probe: { name: `${tag}-${i}`, group: `g-${i % 100}` } }, signer, now)
}

/**
 * A master's home with `size` probe policies already on its ledger (LevelDB in the home, or
 * the PostgreSQL database `psql`), ordered and signed under the key the node will load.
 */
export async function preparedHome (t: Cleanup, size: number, psql?: { host: string, port: number, user: string, database: string }, policy: (i: number, author: Signer, now: Date) => Policy = (i, author, now) => probe(i, 'pre', author, now)): Promise<string> {
  const home = join(tempDir(t, 'lm-bench-rest-'), 'home')
  const { signer } = await loadOrCreateIdentity(home)
  const store = psql === undefined
    ? await openStore({ type: 'level', path: join(home, 'ledger'), durable: true })
    : await openStore({ type: 'psql', ...psql })
  const now = new Date()
  const author = new Ed25519Signer(randomBytes(32))
  const chunk = 5000
  await store.open()
  const sign = checkpointSigner(signer)
  for (let from = 0; from < size; from += chunk) {
    const policies = Array.from({ length: Math.min(chunk, size - from) }, (_, i) => policy(from + i, author, now))
    await fillStore(store, policies, signer, 1000, sign)
  }
  await store.close()
  return home
}

/** AnyLog's REST request: the command in a header, the policy (if any) in the body. */
export async function sequentialCommands (node: NodeProcess, count: number, request: (i: number) => { method: 'GET' | 'POST', command: string, body?: string }, check: (status: number, text: string) => void): Promise<SequentialRun> {
  return await sequential(node.url, count, i => {
    const { method, command, body } = request(i)
    return { method, headers: { command, 'user-agent': 'AnyLog/1.23', ...(body === undefined ? {} : { 'content-type': 'text/plain' }) }, body }
  }, (_, status, text) => { check(status, text) })
}

function row (bench: RestRow['bench'], at: string, store: RestRow['store'], size: number, run: SequentialRun, goal: (r: RestRow) => string | undefined): RestRow {
  const r: RestRow = { bench, at, store, policies_before: size, requests: run.latencies.length, ...latencyFigures(run) }
  const verdict = goal(r)
  return verdict === undefined ? r : { ...r, goal: verdict }
}

function insertGoal (r: RestRow): string | undefined {
  if (r.at === 'member') return `>= 500/s: ${r.per_s >= 500 ? 'met' : 'missed'}`
  if (r.store === 'psql') return `>= 700/s: ${r.per_s >= 700 ? 'met' : 'missed'}`
  return `>= 1,000/s and p99 < 3 ms: ${r.per_s >= 1000 && r.p99_ms < 3 ? 'met' : 'missed'}`
}

export function expectOrdered (status: number, text: string): void {
  if (status !== 200 || !/inserted \(global, seq \d+\)/.test(text)) throw new Error(`insert not ordered: HTTP ${status}: ${text.slice(0, 300)}`)
}

function insertRequest (tag: string): (i: number) => { method: 'POST', command: string, body: string } {
  return i => ({ method: 'POST', command: INSERT_COMMAND, body: `<p={"probe": {"name": "${tag}-${i}", "group": "bench"}}>` })
}

async function masterNode (t: Cleanup, store: 'level' | 'psql', size: number): Promise<NodeProcess> {
  const db = store === 'psql' ? await createTestDatabase(t) : undefined
  const home = await preparedHome(t, size, db)
  const env: Record<string, string | number> = { LOG_LEVEL: 'info', ...(db === undefined ? {} : { DB_TYPE: 'psql', DB_IP: db.host, DB_PORT: db.port, DB_USER: db.user, DB_NAME: db.database }) }
  const master = await startNode(t, { type: 'master', name: `bench-${store}-master`, home, env, nodeArgs: cpuProfileArgs() })
  t.teardown(async () => { await master.stop() })
  return master
}

export async function restInsert (opts: { sizes?: number[], inserts?: number, stores?: Array<'level' | 'psql'> } = {}): Promise<RestRow[]> {
  const sizes = opts.sizes ?? envInts('BENCH_REST_SIZES', [1000, 100_000])
  const inserts = opts.inserts ?? envInt('BENCH_REST_INSERTS', 3000)
  const stores = opts.stores ?? ['level', 'psql']
  const rows: RestRow[] = []
  for (const size of sizes) {
    for (const store of stores) {
      rows.push(await withCleanup(async t => {
        const master = await masterNode(t, store, size)
        const run = await sequentialCommands(master, inserts, insertRequest(`m-${store}`), expectOrdered)
        return row('rest-insert', 'master', store, size, run, insertGoal)
      }))
    }
    rows.push(await withCleanup(async t => {
      const master = await masterNode(t, 'level', size)
      const member = await startNode(t, { type: 'member', name: 'bench-member', env: { LEDGER_CONN: `127.0.0.1:${master.tcpPort}`, LOG_LEVEL: 'info' }, nodeArgs: cpuProfileArgs() })
      t.teardown(async () => { await member.stop() })
      await waitForHead(member, size)
      const run = await sequentialCommands(member, inserts, insertRequest('member'), expectOrdered)
      return row('rest-insert', 'member', 'level', size, run, insertGoal)
    }))
  }
  return rows
}

export async function restQuery (opts: { size?: number, queries?: number } = {}): Promise<RestRow[]> {
  const size = opts.size ?? Math.max(...envInts('BENCH_REST_SIZES', [100_000]))
  const queries = opts.queries ?? envInt('BENCH_REST_INSERTS', 3000)
  return await withCleanup(async t => {
    const master = await masterNode(t, 'level', size)
    // serving, not starting: folding 100,000 policies leaves V8 collecting for a second or two
    await waitQuiet([master.proc.pid!])
    const run = await sequentialCommands(master, queries, i => ({ method: 'GET', command: `blockchain get probe where name = pre-${Math.abs(i * 7919) % size} bring.count` }), (status, text) => {
      if (status !== 200 || text.trim() !== '1') throw new Error(`query answered HTTP ${status}: ${text.slice(0, 200)}`)
    })
    return [row('rest-query', 'master', 'level', size, run, r => `p99 < 1 ms: ${r.p99_ms < 1 ? 'met' : 'missed'}`)]
  })
}

/** Waits (bounded) until a node's replica holds at least `seq` entries. */
async function waitForHead (node: NodeProcess, seq: number): Promise<void> {
  const deadline = Date.now() + 180_000
  while (Date.now() < deadline) {
    const response = await fetch(`${node.url}/v1/ledger/head`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined)
    const head = response?.ok === true ? await response.json() as { seq: number } : undefined
    if (head !== undefined && head.seq >= seq) return
    await new Promise(resolve => setTimeout(resolve, 250))
  }
  throw new Error(`${node.name} did not reach seq ${seq} within 180 s`)
}

/**
 * rest-insert-concurrent: BENCH_REST_CLIENTS (64) keep-alive connections inserting at once at
 * the LevelDB master (1,000 policies before), beside raw node:crypto Ed25519 verification of
 * the same kind of policy on one core, measured in the same run: the goal is at least half of
 * that rate (an insert costs a signature, a verification or its shortcut, a durable commit).
 */
export async function restInsertConcurrent (opts: { clients?: number, inserts?: number } = {}): Promise<RestRow[]> {
  const clients = opts.clients ?? envInt('BENCH_REST_CLIENTS', 64)
  const inserts = opts.inserts ?? envInt('BENCH_REST_CONCURRENT_INSERTS', 20_000)
  const raw = rawVerifyPerSecond(Math.min(inserts, 5000))
  return await withCleanup(async t => {
    const master = await masterNode(t, 'level', 1000)
    const pool = new Pool(master.url, { connections: clients, pipelining: 1 })
    t.teardown(async () => { await pool.close() })
    const send = async (name: string): Promise<void> => {
      const response = await pool.request({ path: '/', method: 'POST', headers: { command: INSERT_COMMAND, 'user-agent': 'AnyLog/1.23', 'content-type': 'text/plain' }, body: `<p={"probe": {"name": "${name}", "group": "bench"}}>` })
      expectOrdered(response.statusCode, await response.body.text())
    }
    await Promise.all(Array.from({ length: clients }, async (_, c) => { await send(`warm-${c}`) }))
    const latencies: number[] = []
    let next = 0
    const started = performance.now()
    await Promise.all(Array.from({ length: clients }, async () => {
      for (let i = next++; i < inserts; i = next++) {
        const sent = performance.now()
        await send(`c-${i}`)
        latencies.push(performance.now() - sent)
      }
    }))
    const seconds = (performance.now() - started) / 1000
    return [row('rest-insert-concurrent', `master, ${clients} clients`, 'level', 1000, { latencies, warmUpLatencies: [], seconds }, r =>
      `>= half of raw verify on one core (${Math.round(raw)}/s): ${r.per_s >= raw / 2 ? 'met' : 'missed'} (${round(r.per_s / raw, 2)}x)`)]
  })
}

/** node:crypto Ed25519 verifications per second on one core, of `count` probe policies' payloads. */
function rawVerifyPerSecond (count: number): number {
  const signer = new Ed25519Signer(randomBytes(32))
  const key = publicKeyObject(signer.publicKey)!
  const now = new Date()
  const signed = Array.from({ length: count }, (_, i) => probe(i, 'raw', signer, now)).map(p => {
    const body = Object.values(p)[0]
    return { message: Buffer.from(signingPayload(p)), signature: Buffer.from(String(body.signature), 'hex') }
  })
  let best = Infinity
  for (let round = 0; round < 3; round++) {
    const started = performance.now()
    for (const { message, signature } of signed) if (!verify(null, message, key, signature)) throw new Error('raw verify failed')
    best = Math.min(best, performance.now() - started)
  }
  return count / (best / 1000)
}
