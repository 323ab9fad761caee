import { randomBytes } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { silentLogger } from '../src/base/logger.js'
import type { Entry } from '../src/ledger/entry.js'
import { Ledger } from '../src/ledger/ledger.js'
import { LevelStore } from '../src/ledger/level-store.js'
import { SnapshotFiles } from '../src/ledger/snapshot/files.js'
import { Ed25519Signer, forgetOwnSignatures, type Signer } from '../src/policies/keys.js'
import type { Policy } from '../src/policies/policy.js'
import { policyId } from '../src/policies/policy.js'
import { preparePolicy, prepareTombstone } from '../src/policies/prepare.js'
import { Compactor } from '../src/services/compactor.js'
import { SnapshotBuilder } from '../src/services/snapshot-builder.js'
import { spawnChild } from './lib/child.js'
import { type Cleanup, PROFILE_KINDS, benchPolicy, buildLedger, envInt, percentile, round, tempDir, withCleanup } from './lib/harness.js'

/**
 * churn: a replica's compacted log against a fresh ledger of the same live size, same run.
 *
 * A master Ledger (LevelDB, fsync on commit) takes LIVE (100,000) policies through
 * Ledger.submit (64 concurrent submitters: group commit) — 1 in 100 a worker declaration (so
 * 1,000 workers), the rest profiles, by 4 author keys — and then churn: in each round the
 * 1,000 workers re-declare themselves and 5,000 profiles are re-placed (each a tombstone, then
 * a new policy under the same name: new port / subaccount), 12,000 entries a round with the
 * live count unchanged, until the log holds BENCH_CHURN_ENTRIES (default 1,000,000). The last
 * 10,000 churn entries are timed (inserts/s).
 *
 * A replica Ledger (LevelDB, no fsync) is synced from the master after every round (the
 * entries past its head under the master's signed head: what sync brings), and a
 * SnapshotBuilder with a Compactor (RETAIN 10,000 entries, SNAPSHOT_INTERVAL 0) ticks every
 * BENCH_CHURN_TICK entries (default 100,000), so it snapshots and compacts as the log grows.
 *
 * Measured at the end: the replica's disk (du of its LevelDB directory after a LevelDB
 * compactRange over all keys, the ledger closed), the live bodies (the bytes of the live
 * entries as the store holds them) and 32 bytes a log entry; the replica's memory when opened
 * on its compacted store alone in a child process (under tsx; --expose-gc, after full GCs),
 * beside a child opened on the fresh ledger; lookup p99 (state.lookup(type, 'name', v), a
 * different live name each call) on the compacted replica vs a fresh 100,000-policy replica;
 * the master's insert rate for its last 10,000 churn entries vs a fresh 100,000-policy master
 * taking the same churn (5,000 tombstones + 5,000 re-puts) and 10,000 new policies.
 */
const LIVE = envInt('BENCH_CHURN_LIVE', 100_000)
const CHURNED_PROFILES = 5_000
const CONCURRENCY = 64
const TIMED = 10_000
const RATIO_GOAL = 1.3
const RSS_GOAL_MB = 250
const SAME_GOAL = 0.9

interface Item { i: number, id: string, signer: Signer }

function authorOf (signers: Signer[], i: number): Signer { return signers[i % signers.length] }

/** The re-placed version of item `i` in round `r`: the same name, another port or subaccount. */
function replaced (i: number, r: number, signer: Signer, tag: string): Policy {
  if (i % 100 === 0) {
    return preparePolicy({
      worker: { name: `${tag}-worker-${i}`, company: `company-${i % 7}`, ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 1024 + ((i + r) % 60_000), slots: 4 }
    }, signer)
  }
  return preparePolicy({ profile: { name: `${tag}-profile-${i}`, kind: PROFILE_KINDS[i % PROFILE_KINDS.length], subaccount: `${tag}-sub-r${r}-${i % 1000}` } }, signer)
}

/** Runs `jobs` with CONCURRENCY submitters; answers the seconds taken. */
async function run (jobs: Array<() => Promise<void>>): Promise<number> {
  let next = 0
  const start = performance.now()
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < jobs.length) await jobs[next++]()
  }))
  return (performance.now() - start) / 1000
}

/** One churn pass over `items`: each gets a tombstone, then its re-placed policy. Answers seconds and entries. */
async function churnPass (ledger: Ledger, items: Item[], r: number, tag: string): Promise<{ seconds: number, entries: number }> {
  const prepared = items.map(item => ({ item, tomb: prepareTombstone(item.id, item.signer), next: replaced(item.i, r, item.signer, tag) }))
  forgetOwnSignatures()
  const seconds = await run(prepared.map(p => async () => {
    await ledger.submit({ op: 'delete', policy: p.tomb })
    p.item.id = policyId((await ledger.submit({ op: 'put', policy: p.next })).policy)
  }))
  return { seconds, entries: 2 * items.length }
}

async function putAll (ledger: Ledger, policies: Policy[]): Promise<{ seconds: number, entries: Entry[] }> {
  const entries: Entry[] = new Array(policies.length)
  let k = 0
  const seconds = await run(policies.map(policy => { const j = k++; return async () => { entries[j] = await ledger.submit({ op: 'put', policy }) } }))
  return { seconds, entries }
}

/** Entries since the replica's head, in one batch under the master's signed head (what sync brings). */
async function sync (master: Ledger, replica: Ledger): Promise<void> {
  const entries = await master.store.range(replica.head.seq + 1, Infinity)
  if (entries.length > 0) await replica.applyBatch(entries, master.signedHead!)
}

function du (path: string): number {
  return Number(execFileSync('du', ['-sb', path], { encoding: 'utf8' }).split('\t')[0])
}

async function levelCompact (store: LevelStore): Promise<string> {
  const db = (store as any).db
  if (typeof db?.compactRange !== 'function') return 'du only (no compactRange)'
  await db.compactRange('\u0000', '\u00ff', { keyEncoding: 'utf8' })
  return 'du after LevelDB compactRange, store closed'
}

/** p50/p99 of `calls` lookups of a live name each. */
function lookups (ledger: Ledger, tag: string, calls: number): { p50_ms: number, p99_ms: number, found: number } {
  const ms: number[] = []
  let found = 0
  for (let c = 0; c < calls + 200; c++) {
    let i = 1 + Math.floor(Math.random() * LIVE)
    if (i % 100 === 0) i++
    if (i > LIVE) i = 1
    const t0 = performance.now()
    for (const _ of ledger.state.lookup('profile', 'name', `${tag}-profile-${i}`)) found++
    if (c >= 200) ms.push(performance.now() - t0)
  }
  return { p50_ms: round(percentile(ms, 50), 4), p99_ms: round(percentile(ms, 99), 4), found }
}

async function childMemory (t: Cleanup, path: string, masterKey: string): Promise<{ rss_mb: number, rss_anon_mb: number, heap_used_mb: number, external_mb: number, array_buffers_mb: number, policies: number }> {
  const child = await spawnChild(t, '../churn.ts', { path, masterKey }, { nodeArgs: ['--expose-gc'], readyWithinMs: 300_000 })
  const m = await child.call<Record<string, number>>('memory')
  await child.call('stop').catch(() => {})
  const mb = (n: number): number => round(n / 2 ** 20, 1)
  return { rss_mb: mb(m.rss), rss_anon_mb: mb(m.rssAnon), heap_used_mb: mb(m.heapUsed), external_mb: mb(m.external), array_buffers_mb: mb(m.arrayBuffers), policies: m.policies }
}

export async function churn (): Promise<object[]> {
  const target = envInt('BENCH_CHURN_ENTRIES', 1_000_000)
  const tickEvery = envInt('BENCH_CHURN_TICK', 100_000)
  const log = silentLogger()
  return await withCleanup(async t => {
    const dir = tempDir(t, 'lm-bench-churn-')
    const masterSigner = new Ed25519Signer(randomBytes(32))
    const signers = Array.from({ length: 4 }, () => new Ed25519Signer(randomBytes(32)))
    const progress = (what: string): void => { process.stderr.write(`churn ${new Date().toISOString().slice(11, 19)} ${what}\n`) }

    // the master, filled with LIVE policies through submit
    const master = new Ledger({ store: new LevelStore({ path: join(dir, 'master'), durable: true }), log, masterSigner })
    await master.open()
    t.teardown(async () => { await master.close() })
    const items: Item[] = []
    for (let from = 1; from <= LIVE; from += 10_000) {
      const batch = Array.from({ length: Math.min(10_000, LIVE - from + 1) }, (_, k) => benchPolicy(from + k, authorOf(signers, from + k), 'c'))
      forgetOwnSignatures()
      const { entries } = await putAll(master, batch)
      entries.forEach((e, k) => { const i = from + k; if (i % 100 === 0 || i % 19 === 1) items.push({ i, id: policyId(e.policy), signer: authorOf(signers, i) }) })
    }
    // the churned set: the 1,000 workers and 5,000 profiles
    const workers = items.filter(x => x.i % 100 === 0)
    const churned = [...workers, ...items.filter(x => x.i % 100 !== 0).slice(0, CHURNED_PROFILES)]
    progress(`master filled: ${master.head.seq} entries, ${master.state.size} live; churned set ${churned.length}`)

    // the replica, with snapshots and compaction
    const replicaPath = join(dir, 'replica')
    const replicaStore = new LevelStore({ path: replicaPath, durable: false })
    let replica = new Ledger({ store: replicaStore, log, masterKey: masterSigner.publicKey })
    await replica.open()
    let replicaOpen = true
    t.teardown(async () => { if (replicaOpen) await replica.close() })
    const compactor = new Compactor({ ledger: () => replica, retain: { kind: 'entries', entries: 10_000 }, log })
    const builder = new SnapshotBuilder({ ledger: () => replica, files: new SnapshotFiles(join(dir, 'served')), witnessed: () => undefined, intervalMs: 0, following: () => true, compactor, log })
    let compactions = 0
    let lastTick = 0
    let tickSeconds = 0
    const tick = async (): Promise<void> => {
      const before = replica.logStart
      const t0 = performance.now()
      await builder.tick()
      tickSeconds += (performance.now() - t0) / 1000
      if (replica.logStart !== before) compactions++
      lastTick = replica.head.seq
    }
    await sync(master, replica)

    // churn until the log holds `target` entries, the last TIMED entries timed
    let r = 0
    const churnStart = performance.now()
    while (master.head.seq + churned.length * 2 <= target - TIMED) {
      r++
      await churnPass(master, churned, r, 'c')
      await sync(master, replica)
      if (replica.head.seq - lastTick >= tickEvery) { await tick(); progress(`round ${r}: ${master.head.seq} entries, replica from ${replica.logStart}`) }
    }
    const churnSeconds = (performance.now() - churnStart) / 1000

    // the fresh 100,000-policy master; then the timed inserts, the two masters one after the
    // other, so both see the same machine (shared, its load changing)
    progress('fresh master')
    const freshMaster = new Ledger({ store: new LevelStore({ path: join(dir, 'fresh-master'), durable: true }), log, masterSigner })
    await freshMaster.open()
    let freshOpen = true
    t.teardown(async () => { if (freshOpen) await freshMaster.close() })
    const freshItems: Item[] = []
    for (let from = 1; from <= LIVE; from += 10_000) {
      const batch = Array.from({ length: Math.min(10_000, LIVE - from + 1) }, (_, k) => benchPolicy(from + k, authorOf(signers, from + k), 'g'))
      forgetOwnSignatures()
      const { entries: put } = await putAll(freshMaster, batch)
      put.forEach((e, k) => { const i = from + k; if ((i % 100 === 0 || i % 19 === 1) && freshItems.length < TIMED / 2) freshItems.push({ i, id: policyId(e.policy), signer: authorOf(signers, i) }) })
    }
    const freshChurn = await churnPass(freshMaster, freshItems, 1, 'g')
    r++
    const last = await churnPass(master, churned.slice(0, TIMED / 2), r, 'c')
    await sync(master, replica)
    // the final snapshot, then entries past RETAIN so it may be compacted to
    await tick()
    for (let extra = 1; replica.head.seq - replica.logStart > 10_000 + churned.length * 2 && extra <= 3; extra++) {
      r++
      await churnPass(master, churned, r, 'c')
      await sync(master, replica)
      await tick()
    }
    const entries = replica.head.seq
    const live = replica.state.size
    // new policies at both masters (after the replica's last sync: its live count stays LIVE)
    const churnedNewPolicies = Array.from({ length: TIMED }, (_, k) => benchPolicy(LIVE + 1 + k, authorOf(signers, k), 'c'))
    forgetOwnSignatures()
    const churnedNew = await putAll(master, churnedNewPolicies)
    const newPolicies = Array.from({ length: TIMED }, (_, k) => benchPolicy(LIVE + 1 + k, authorOf(signers, k), 'g'))
    forgetOwnSignatures()
    const freshNew = await putAll(freshMaster, newPolicies)
    await freshMaster.close()
    freshOpen = false
    progress(`churned: ${entries} entries, ${live} live, replica log from ${replica.logStart}, ${compactions} compactions`)

    // the replica's store: live bodies, kept entries, disk
    const liveSeqs = [...replica.state.logged()].map(([, seq]) => seq)
    let liveBytes = 0
    for (let k = 0; k < liveSeqs.length; k += 1024) {
      for (const e of await replica.store.entriesAt(liveSeqs.slice(k, k + 1024))) liveBytes += Buffer.byteLength(JSON.stringify({ seq: e.seq, op: e.op, policy: e.policy, prevHash: e.prevHash, hash: e.hash }))
    }
    const kept = (await replica.store.range(1, Infinity)).length
    const churnedQuery = lookups(replica, 'c', 5000)
    const diskRaw = du(replicaPath)
    const how = await levelCompact(replicaStore)
    await replica.close()
    replicaOpen = false
    const disk = du(replicaPath)
    const bound = liveBytes + 32 * entries
    const ratio = disk / bound

    // the fresh 100,000-policy replica, same run (lookups, memory)
    const freshReplicaPath = join(dir, 'fresh-replica')
    const freshSigner = new Ed25519Signer(randomBytes(32))
    const freshReplica = await buildLedger(new LevelStore({ path: freshReplicaPath, durable: false }), LIVE, { masterSigner: freshSigner, asMaster: false, tag: 'f' })
    const freshQuery = lookups(freshReplica, 'f', 5000)
    await freshReplica.close()

    // memory: each replica opened on its store alone in a child process
    progress('memory children')
    const compactedMem = await childMemory(t, replicaPath, masterSigner.publicKey)
    const freshMem = await childMemory(t, freshReplicaPath, freshSigner.publicKey)

    const rate = (x: { seconds: number, entries: number }): number => Math.round(x.entries / x.seconds)
    const lastRate = rate(last)
    const freshRate = rate(freshChurn)
    const newRate = Math.round(TIMED / churnedNew.seconds)
    const freshNewRate = Math.round(TIMED / freshNew.seconds)
    const pRatio = freshQuery.p99_ms / churnedQuery.p99_ms
    const mb = (n: number): number => round(n / 2 ** 20, 1)
    return [
      { measure: 'log', entries, live, rounds: r, churned_per_round: churned.length * 2, churn_seconds: round(churnSeconds, 1), replica_log_start: replica.logStart, kept_entries: kept, compactions, snapshot_and_compact_seconds: round(tickSeconds, 1) },
      { measure: 'disk', replica_disk_mb: mb(disk), replica_disk_before_leveldb_compaction_mb: mb(diskRaw), live_bodies_mb: mb(liveBytes), entry_hashes_mb: mb(32 * entries), bound_mb: mb(bound), ratio: round(ratio, 3), how, goal: `<= ${RATIO_GOAL} x (live bodies + 32 B/entry): ${ratio <= RATIO_GOAL ? 'met' : 'missed'}` },
      { measure: 'memory (compacted replica, own process)', ...compactedMem, goal: `RSS < ${RSS_GOAL_MB} MB: ${compactedMem.rss_mb < RSS_GOAL_MB ? 'met' : 'missed'}` },
      { measure: 'memory (fresh 100,000 replica, own process)', ...freshMem },
      { measure: 'lookup p99 (compacted replica)', ...churnedQuery },
      { measure: 'lookup p99 (fresh 100,000 replica)', ...freshQuery, ratio: round(pRatio, 3), goal: `fresh p99 / compacted p99 >= ${SAME_GOAL}: ${pRatio >= SAME_GOAL ? 'met' : 'missed'}` },
      { measure: 'inserts/s, churn (tombstone + re-put)', churned_last_10000: lastRate, fresh_first_10000: freshRate, ratio: round(lastRate / freshRate, 3), goal: `>= ${SAME_GOAL}: ${lastRate / freshRate >= SAME_GOAL ? 'met' : 'missed'}` },
      { measure: 'inserts/s, 10,000 new policies', churned: newRate, fresh: freshNewRate, ratio: round(newRate / freshNewRate, 3) }
    ]
  })
}

/** As a child (spawnChild): a replica Ledger opened on argv[2].path; `memory` → process.memoryUsage() after full GCs. */
async function child (): Promise<void> {
  const args = JSON.parse(process.argv[2]) as { path: string, masterKey: string }
  const ledger = new Ledger({ store: new LevelStore({ path: args.path, durable: false }), log: silentLogger(), masterKey: args.masterKey })
  await ledger.open()
  const say = (o: object): void => { process.stdout.write(JSON.stringify(o) + '\n') }
  say({ id: 0, ok: true })
  const lines = createInterface({ input: process.stdin })
  for await (const line of lines) {
    const { id, cmd } = JSON.parse(line) as { id: number, cmd: string }
    if (cmd === 'memory') {
      for (let k = 0; k < 3; k++) { (globalThis as any).gc(); await new Promise(resolve => setTimeout(resolve, 100)) }
      const status = readFileSync('/proc/self/status', 'utf8')
      const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
      say({ id, ok: true, ...process.memoryUsage(), rssAnon: kb('RssAnon'), policies: ledger.state.size })
    } else if (cmd === 'stop') {
      say({ id, ok: true })
      break
    } else say({ id, ok: false, error: `unknown ${cmd}` })
  }
  await ledger.close()
  process.exit(0)
}

if (process.argv[1]?.endsWith(join('bench', 'churn.ts')) && process.argv[2]?.startsWith('{') === true) await child()
