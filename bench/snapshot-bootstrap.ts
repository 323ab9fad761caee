import { randomBytes } from 'node:crypto'
import { copyFileSync, existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { silentLogger } from '../src/base/logger.js'
import type { Entry } from '../src/ledger/entry.js'
import { Ledger } from '../src/ledger/ledger.js'
import { LevelStore } from '../src/ledger/level-store.js'
import { SnapshotFiles, manifestPath } from '../src/ledger/snapshot/files.js'
import { loadOrCreateIdentity } from '../src/node/identity.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { policyBody } from '../src/policies/policy.js'
import { AuthorCheck } from '../src/services/author-check.js'
import { bootstrapFromSnapshot } from '../src/services/snapshot-bootstrap.js'
import { SnapshotBuilder } from '../src/services/snapshot-builder.js'
import { type SnapshotSource, mirrorSnapshotSource } from '../src/services/snapshot-sources.js'
import { checkpointSigner } from '../test/helpers/checkpoints.js'
import { serveDirectory } from '../test/helpers/static-server.js'
import { childArgs, serveParent, spawnChild } from './lib/child.js'
import { type Cleanup, benchPolicy, envInt, envInts, fillStore, makePolicies, round, tempDir, withCleanup } from './lib/harness.js'

/**
 * snapshot-bootstrap: a replica's cold start from a snapshot instead of replaying the log.
 *
 * Per size (BENCH_SNAPSHOT_POLICIES, default 100,000 and 1,000,000), three processes:
 * - a master child (this file, role `master`) builds a LevelDB ledger of N signed policies
 *   through the store API (harness.ts fillStore, in batches so 1M fits), opens it as the
 *   master, commits one more policy through Ledger.submit (so its signed head carries a state
 *   line) and takes a snapshot (SnapshotBuilder.tick, intervalMs 0) into a snapshot directory:
 *   the time to take it, and its bytes on disk (the live state's encoded size is the sum of
 *   the chunks' bytes);
 * - Python's http.server serving that directory, as a static mirror (test/helpers/static-server.ts);
 * - a replica child (this file, role `replica`): a fresh LevelDB Ledger (not fsynced, as
 *   replicas run) runs bootstrapFromSnapshot from that mirror, mode `snapshot` (the master's
 *   signature on the checkpoint, no witnesses). Measured in the replica: the time from the
 *   command until the snapshot is installed and one indexed read (`findByName`) answers; the
 *   state root it then holds, compared with the master's signed one; the bytes every GET
 *   returned (latest, manifest, chunks); its CPU; its peak RSS (VmHWM); then the time
 *   AuthorCheck takes to verify every author signature (on the verify pool, both cores).
 *   Its process start (spawn to ready: loading the code) is reported apart.
 *
 * BENCH_SNAPSHOT_PROFILE=0 skips the profiled run (default: at the first size ≤ 100,000 one
 * more replica bootstraps under `node --cpu-prof`, untimed; the summary of its main thread's
 * profile is a row of its own). For comparison at 100,000, the full replay of the log is
 * bench/results/catch-up.json's last committed result, cited, not run again.
 */

const log = silentLogger()
/** policies made and written at once while the master's ledger is built (1M would not fit in one array) */
const BUILD_BATCH = 50_000

export interface SnapshotBootstrapRow {
  policies: number
  head: number
  chunks: number
  /** the live state's encoded size: the sum of the chunks' bytes on disk */
  state_bytes: number
  manifest_bytes: number
  master_build_s: number
  snapshot_take_s: number
  replica_process_start_s: number
  /** bootstrapFromSnapshot resolved and one indexed read answered */
  serving_s: number
  fetched_bytes: number
  /** fetched ÷ the live state's encoded size */
  bytes_ratio: number
  state_root_matches: boolean
  replica_cpu_bootstrap_s: number
  replica_peak_rss_mb_serving: number
  /** time for AuthorCheck to verify every author signature, after serving */
  authors_verify_s: number
  /** serving + authors */
  authors_verified_s: number
  replica_cpu_authors_s: number
  replica_peak_rss_mb: number
  /** bench/results/catch-up.json's full replay at this size, when it has one */
  full_replay_s?: number
  goals: string
}

const vmHwmMb = (): number => {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))
  return m === null ? NaN : round(Number(m[1]) / 1024, 1)
}
const cpuMs = (since?: NodeJS.CpuUsage): number => { const u = process.cpuUsage(since); return (u.user + u.system) / 1000 }

/* ----------------------------------------------------------------- master child */

async function masterChild (args: { home: string }): Promise<void> {
  let ledger: Ledger | undefined
  serveParent({}, {
    build: async ({ policies }) => {
      const started = performance.now()
      const { signer } = await loadOrCreateIdentity(args.home)
      const store = new LevelStore({ path: join(args.home, 'ledger'), durable: false })
      const author = new Ed25519Signer(randomBytes(32))
      const sign = checkpointSigner(signer)
      for (let from = 1; from <= policies; from += BUILD_BATCH) {
        await fillStore(store, makePolicies(Math.min(BUILD_BATCH, policies - from + 1), { signer: author, tag: 's', from }), signer, 1000, sign)
      }
      ledger = new Ledger({ store, log, masterSigner: signer })
      await ledger.open()
      // one commit by the master itself, of a policy it authored (the key a replica finds the
      // checkpoint's origin by): its checkpoint carries the state line a snapshot needs
      await ledger.submit({ op: 'put', policy: benchPolicy(policies + 1, signer, 's') })
      const buildSeconds = (performance.now() - started) / 1000
      const files = new SnapshotFiles(join(args.home, 'served'))
      const builder = new SnapshotBuilder({ ledger: () => ledger, files, witnessed: () => undefined, intervalMs: 0, following: () => true, log })
      const t0 = performance.now()
      const size = await builder.tick()
      const takeSeconds = (performance.now() - t0) / 1000
      if (size !== ledger.head.seq) throw new Error(`no snapshot taken at the head ${ledger.head.seq} (${String(size)})`)
      const chunkDir = join(files.root, 'snapshot', String(size), 'chunk')
      const chunkFiles = readdirSync(chunkDir)
      const stateBytes = chunkFiles.reduce((sum, f) => sum + statSync(join(chunkDir, f)).size, 0)
      return {
        root: files.root,
        size,
        live: ledger.state.size,
        stateRoot: ledger.signedHead!.state!.root,
        chunks: chunkFiles.length,
        stateBytes,
        manifestBytes: statSync(join(files.root, manifestPath(size))).size,
        buildSeconds,
        takeSeconds,
        rssMb: vmHwmMb()
      }
    }
  }, async () => { await ledger?.close() })
}

/* ---------------------------------------------------------------- replica child */

async function replicaChild (args: { home: string }): Promise<void> {
  let ledger: Ledger | undefined
  let entries: Entry[] = []
  serveParent({ rssMb: vmHwmMb() }, {
    bootstrap: async ({ url }) => {
      let fetched = 0
      const mirror = mirrorSnapshotSource(String(url))
      const source: SnapshotSource = { name: mirror.name, get: async path => { const bytes = await mirror.get(path); fetched += bytes.length; return bytes } }
      const cpu0 = process.cpuUsage()
      const hrStartUs = Number(process.hrtime.bigint() / 1000n)
      const t0 = performance.now()
      ledger = new Ledger({ store: new LevelStore({ path: join(args.home, 'ledger'), durable: false }), log })
      await ledger.open()
      const result = await bootstrapFromSnapshot({ ledger, sources: [source], mode: 'snapshot', scratch: new SnapshotFiles(join(args.home, 'scratch')), log })
      if (result === undefined) throw new Error('no snapshot accepted')
      // one indexed read: a policy by its name, through the state's name index
      const probe = policyBody(result.entries[Math.floor(result.entries.length / 2)].policy)
      const found = ledger.state.findByName('profile', String(probe.name))
      const servingSeconds = (performance.now() - t0) / 1000
      const hrEndUs = Number(process.hrtime.bigint() / 1000n)
      if (found === undefined || policyBody(found).id !== probe.id) throw new Error(`the replica does not serve ${String(probe.name)}`)
      const cpuBootstrapMs = cpuMs(cpu0)
      entries = result.entries
      return {
        servingSeconds,
        hrStartUs,
        hrEndUs,
        cpuBootstrapMs,
        fetched,
        resultBytes: result.bytes,
        head: ledger.head.seq,
        live: ledger.state.size,
        signedStateRoot: ledger.signedHead?.state?.root,
        heldStateRoot: ledger.stateRoot.commitment().root,
        rssMb: vmHwmMb()
      }
    },
    authors: async () => {
      const cpu0 = process.cpuUsage()
      const t0 = performance.now()
      let bad: string | undefined
      const check = new AuthorCheck({ entries, log, onInvalid: async reason => { bad = reason } })
      await check.run()
      const seconds = (performance.now() - t0) / 1000
      if (!check.status.done || bad !== undefined) throw new Error(`author check: ${bad ?? JSON.stringify(check.status)}`)
      return { seconds, verified: check.status.verified, cpuMs: cpuMs(cpu0), rssMb: vmHwmMb() }
    }
  }, async () => { await ledger?.close() })
}

/* ------------------------------------------------------------------ the profile */

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, hitCount?: number, children?: number[] }
interface CpuProfile { nodes: ProfileNode[], startTime: number, endTime: number, samples: number[], timeDeltas: number[] }

const frameKey = (n: ProfileNode): string => {
  const file = n.callFrame.url.replace(/^file:\/\//, '').replace(/^.*\/(src|node_modules)\//, '$1/')
  return `${n.callFrame.functionName === '' ? '(anonymous)' : n.callFrame.functionName} ${file}`
}

/**
 * Self time per frame (top 12), and inclusive time of the functions a bootstrap is made of,
 * over the samples from `from` to `to` (µs, the profile's clock: the monotonic one
 * process.hrtime reads); shares are of the time not idle.
 */
export function summarizeProfile (profile: CpuProfile, from: number, to: number): object {
  const byId = new Map(profile.nodes.map(n => [n.id, n]))
  const selfMs = new Map<number, number>()
  let t = profile.startTime
  let total = 0
  let idle = 0
  profile.samples.forEach((id, i) => {
    t += profile.timeDeltas[i]
    if (t < from || t > to) return
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000
    if (byId.get(id)!.callFrame.functionName === '(idle)') { idle += ms; return }
    selfMs.set(id, (selfMs.get(id) ?? 0) + ms)
    total += ms
  })
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const self = new Map<string, number>()
  for (const [id, ms] of selfMs) { const k = frameKey(byId.get(id)!); self.set(k, (self.get(k) ?? 0) + ms) }
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, 12).map(([frame, ms]) => ({ frame, ms: Math.round(ms), share: round(ms / total, 3) }))
  // inclusive: a sample counts for each named function on its stack (once, however deep)
  const names = ['bootstrapFromSnapshot', 'fetchChunks', 'checkChunk', 'decodeBundle', 'parseEntryText', 'statePath', 'subtreeRoot', 'accept', 'installSnapshot', 'installBase', 'putEntries', 'fold', 'foldLog', 'foldBase', 'apply', 'commitment', 'range', 'findByName', 'get', 'writeChunk']
  const inclusive = new Map<string, number>()
  for (const [id, ms] of selfMs) {
    const seen = new Set<string>()
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const node = byId.get(n)!
      const name = node.callFrame.functionName
      if (!names.includes(name)) continue
      const k = frameKey(node)
      if (seen.has(k)) continue
      seen.add(k)
      inclusive.set(k, (inclusive.get(k) ?? 0) + ms)
    }
  }
  const inc = [...inclusive].filter(([, ms]) => ms >= total * 0.01).sort((a, b) => b[1] - a[1]).map(([frame, ms]) => ({ frame, ms: Math.round(ms), share: round(ms / total, 3) }))
  return { busy_ms: Math.round(total), idle_ms: Math.round(idle), top_self: top, inclusive: inc }
}

/* --------------------------------------------------------------------- parent */

function catchUpResult (policies: number): { seconds: number, date: string } | undefined {
  const file = join(import.meta.dirname, 'results', 'catch-up.json')
  if (!existsSync(file)) return undefined
  const result = JSON.parse(readFileSync(file, 'utf8')) as { date: string, rows: Array<{ policies: number, seconds: number }> }
  const row = result.rows.find(r => r.policies === policies)
  return row === undefined ? undefined : { seconds: row.seconds, date: result.date }
}

const SELF = '../snapshot-bootstrap.ts'

async function buildMaster (t: Cleanup, policies: number): Promise<Record<string, any>> {
  const master = await spawnChild(t, SELF, { role: 'master', home: tempDir(t, 'lm-bench-snap-master-') }, { stopWithinMs: 60_000 })
  return await master.call('build', { policies })
}

async function oneSize (policies: number, profile: boolean): Promise<object[]> {
  return await withCleanup(async t => {
    const built = await buildMaster(t, policies)
    const url = await serveDirectory(t, built.root, 'snapshot/latest')
    const rows: object[] = []
    const spawned = performance.now()
    const replica = await spawnChild(t, SELF, { role: 'replica', home: tempDir(t, 'lm-bench-snap-replica-') })
    const processStart = (performance.now() - spawned) / 1000
    const boot = await replica.call('bootstrap', { url })
    if (boot.head !== built.size || boot.live !== built.live) throw new Error(`the replica holds ${boot.live} policies at ${boot.head}, the master ${built.live} at ${built.size}`)
    const authors = await replica.call('authors')
    const catchUp = catchUpResult(policies)
    const stateRootMatches = boot.signedStateRoot === built.stateRoot && boot.heldStateRoot === built.stateRoot
    const ratio = boot.fetched / built.stateBytes
    const authorsTotal = boot.servingSeconds + authors.seconds
    const goals = policies >= 1_000_000
      ? `serving < 15 s: ${boot.servingSeconds < 15 ? 'met' : 'missed'}`
      : policies >= 100_000
        ? `serving < 2 s: ${boot.servingSeconds < 2 ? 'met' : 'missed'}; authors < 10 s: ${authorsTotal < 10 ? 'met' : 'missed'}; bytes ≤ 1.1×: ${ratio <= 1.1 ? 'met' : 'missed'}`
        : ''
    const row: SnapshotBootstrapRow = {
      policies: built.live,
      head: built.size,
      chunks: built.chunks,
      state_bytes: built.stateBytes,
      manifest_bytes: built.manifestBytes,
      master_build_s: round(built.buildSeconds, 1),
      snapshot_take_s: round(built.takeSeconds, 3),
      replica_process_start_s: round(processStart, 3),
      serving_s: round(boot.servingSeconds, 3),
      fetched_bytes: boot.fetched,
      bytes_ratio: round(ratio, 4),
      state_root_matches: stateRootMatches,
      replica_cpu_bootstrap_s: round(boot.cpuBootstrapMs / 1000, 3),
      replica_peak_rss_mb_serving: boot.rssMb,
      authors_verify_s: round(authors.seconds, 3),
      authors_verified_s: round(authorsTotal, 3),
      replica_cpu_authors_s: round(authors.cpuMs / 1000, 3),
      replica_peak_rss_mb: authors.rssMb,
      ...(catchUp !== undefined ? { full_replay_s: catchUp.seconds } : {}),
      goals
    }
    rows.push(row)
    if (profile) {
      const dir = tempDir(t, 'lm-bench-snap-prof-')
      await withCleanup(async tp => {
        const profiled = await spawnChild(tp, SELF, { role: 'replica', home: tempDir(tp, 'lm-bench-snap-replica-') }, { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', dir] })
        const run = await profiled.call('bootstrap', { url })
        rows.push({ policies: built.live, profile: 'replica main thread, the bootstrap command only (--cpu-prof)', serving_s: round(run.servingSeconds, 3), window: [run.hrStartUs, run.hrEndUs] })
      })
      const file = readdirSync(dir).find(f => f.endsWith('.cpuprofile'))
      if (file === undefined) throw new Error('the profiled replica wrote no profile')
      // kept for a closer look (Chrome DevTools, speedscope): the temp directory goes at cleanup
      const kept = join(tmpdir(), `lm-snapshot-bootstrap-${policies}.cpuprofile`)
      copyFileSync(join(dir, file), kept)
      const prof = JSON.parse(readFileSync(kept, 'utf8')) as CpuProfile
      // the samples while the bootstrap command ran (not the code's loading, nor the exit)
      const window = rows[rows.length - 1] as { window: [number, number] }
      Object.assign(window, summarizeProfile(prof, window.window[0], window.window[1]), { file: kept })
      delete (window as { window?: unknown }).window
    }
    return rows
  })
}

/** Sizes from BENCH_SNAPSHOT_POLICIES (default 100,000 and 1,000,000). */
export async function snapshotBootstrap (): Promise<object[]> {
  const sizes = envInts('BENCH_SNAPSHOT_POLICIES', [100_000, 1_000_000])
  let profile = envInt('BENCH_SNAPSHOT_PROFILE', 1) === 1
  const rows: object[] = []
  for (const size of sizes) {
    const profileThis = profile && size <= 100_000 && (size === 100_000 || !sizes.includes(100_000))
    rows.push(...await oneSize(size, profileThis))
    if (profileThis) profile = false
  }
  return rows
}

/* --------------------------------------------------------------- as a child */

if (process.argv[1] !== undefined && import.meta.filename === process.argv[1]) {
  const args = childArgs<{ role: 'master' | 'replica', home: string }>()
  if (args.role === 'master') await masterChild(args)
  else await replicaChild(args)
}
