import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { checkpointSigner } from '../../test/helpers/checkpoints.js'
import { Ledger } from '../../src/ledger/ledger.js'
import type { LedgerStore } from '../../src/ledger/store.js'
import { silentLogger } from '../../src/base/logger.js'
import { Ed25519Signer, forgetOwnSignatures, type Signer } from '../../src/policies/keys.js'
import type { Policy } from '../../src/policies/policy.js'
import { preparePolicy } from '../../src/policies/prepare.js'

/**
 * What the benchmarks share: cleanup in reverse order (like tap's t.teardown, so the tests'
 * helpers take it), percentiles, env overrides, and the benchmark ledgers — signed policies
 * written straight through the store API (the master's own commit path, without the
 * per-insert checks), so a 100,000-policy ledger takes seconds to build.
 */

export class Cleanup {
  private readonly fns: Array<() => unknown> = []
  teardown (fn: () => unknown): void { this.fns.push(fn) }
  async run (): Promise<void> {
    while (this.fns.length > 0) {
      const fn = this.fns.pop()!
      try { await fn() } catch (err) { process.stderr.write(`bench cleanup: ${String(err)}\n`) }
    }
  }
}

/** Runs `work` with a Cleanup that always runs afterwards, even when the work throws. */
export async function withCleanup<T> (work: (t: Cleanup) => Promise<T>): Promise<T> {
  const t = new Cleanup()
  try { return await work(t) } finally { await t.run() }
}

/** A temp directory removed at cleanup. */
export function tempDir (t: Cleanup, prefix = 'lm-bench-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

/** Nearest-rank percentile of `values` (not sorted in place). */
export function percentile (values: readonly number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
}

export function median (values: readonly number[]): number { return percentile(values, 50) }

export const round = (n: number, digits = 2): number => Number(n.toFixed(digits))

/**
 * BENCH_CPU_PROF=<dir>: the node processes a benchmark starts (its masters) run under
 * `node --cpu-prof`, leaving their profiles in <dir>. The arguments for startNode's nodeArgs.
 */
export function cpuProfileArgs (): string[] {
  const dir = process.env.BENCH_CPU_PROF
  return dir === undefined || dir === '' ? [] : ['--cpu-prof', '--cpu-prof-dir', dir]
}

/** An integer from the environment, else `fallback`. */
export function envInt (name: string, fallback: number): number {
  const text = process.env[name]
  if (text === undefined || text.trim() === '') return fallback
  const n = Number(text)
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${text}: expected a non-negative integer`)
  return n
}

/** A comma-separated list of integers from the environment, else `fallback`. */
export function envInts (name: string, fallback: number[]): number[] {
  const text = process.env[name]
  if (text === undefined || text.trim() === '') return fallback
  return text.split(',').map(s => {
    const n = Number(s.trim())
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${text}: expected comma-separated integers`)
    return n
  })
}

/** Ledger size for the single-size benchmarks: BENCH_POLICIES (its largest value), default 100,000. */
export function benchPolicies (fallback = 100_000): number {
  return Math.max(...envInts('BENCH_POLICIES', [fallback]))
}

/** CPU milliseconds (user + system, every thread of this process) since `since`. */
export function cpuMsSince (since: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(since)
  return (used.user + used.system) / 1000
}

const TICK_MS = 10 // /proc counts CPU in clock ticks of 10 ms (USER_HZ 100)

/** user + system CPU of a process (all its threads), ms. */
export function processCpuMs (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // fields after the command name (which may hold spaces) in parentheses
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS
}

/**
 * Waits until each process used less than `share` of a core over one `windowMs` window (a
 * node that just caught up still hashes, builds its snapshot and collects garbage for some
 * seconds), at most `withinMs`; answers how long it waited. A start-up measured then is the
 * worker's own, not the network's digestion of what came before.
 */
export async function waitQuiet (pids: readonly number[], opts: { windowMs?: number, share?: number, withinMs?: number } = {}): Promise<number> {
  const { windowMs = 1000, share = 0.05, withinMs = 60_000 } = opts
  const started = performance.now()
  while (performance.now() - started < withinMs) {
    const before = pids.map(processCpuMs)
    await new Promise(resolve => setTimeout(resolve, windowMs))
    if (pids.every((pid, i) => processCpuMs(pid) - before[i] < share * windowMs)) break
  }
  return performance.now() - started
}

export const PROFILE_KINDS = ['linkedin', 'facebook', 'email-verification', 'mta'] as const

/**
 * Policy number `i` of a benchmark ledger: 1 in 100 a `worker` declaration (name, company,
 * ip, port, slots), the rest `profile`s (name, kind, subaccount) — the network's own types,
 * so the replica's schema and authorization checks run on every one. `tag` keeps names (and
 * so ids) unique across ledgers built in one run.
 */
export function benchPolicy (i: number, signer: Signer, tag = 'b', now = new Date()): Policy {
  if (i % 100 === 0) {
    return preparePolicy({
      worker: { name: `${tag}-worker-${i}`, company: `company-${i % 7}`, ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: 30_000 + (i % 30_000), slots: 4 }
    }, signer, now)
  }
  return preparePolicy({
    profile: { name: `${tag}-profile-${i}`, kind: PROFILE_KINDS[i % PROFILE_KINDS.length], subaccount: `${tag}-sub-${i % 1000}` }
  }, signer, now)
}

/** `count` signed policies numbered from `from` (1 by default), by one author key. */
export function makePolicies (count: number, opts: { signer?: Signer, tag?: string, from?: number } = {}): Policy[] {
  const signer = opts.signer ?? new Ed25519Signer(randomBytes(32))
  const from = opts.from ?? 1
  const now = new Date()
  const policies = Array.from({ length: count }, (_, i) => benchPolicy(from + i, signer, opts.tag, now))
  // made in this process: whatever verifies them here must verify them in full, as a node
  // verifies another's policies (a node skips verifying only signatures it made itself)
  forgetOwnSignatures()
  return policies
}

/**
 * Writes `policies` to a store as the master would have ordered them: chained, in commits of
 * `chunk`, each under a checkpoint signed by `masterSigner`. The store is opened and left
 * open. Filling one store in several calls, pass the same `sign` to each (it keeps the tree).
 */
export async function fillStore (store: LedgerStore, policies: Policy[], masterSigner: Signer, chunk = 1000, sign = checkpointSigner(masterSigner)): Promise<void> {
  await store.open()
  for (let i = 0; i < policies.length; i += chunk) {
    await store.commit(policies.slice(i, i + chunk).map(policy => ({ op: 'put' as const, policy })), sign)
  }
}

/**
 * A ledger holding `count` benchmark policies: the master's (it signs heads) when
 * `masterSigner` is the ledger's own signer, else a replica's that trusts `masterKey`.
 * Opening folds the log, as a node does at start.
 */
export async function buildLedger (store: LedgerStore, count: number, opts: { masterSigner: Ed25519Signer, asMaster?: boolean, tag?: string }): Promise<Ledger> {
  await fillStore(store, makePolicies(count, { tag: opts.tag }), opts.masterSigner)
  const ledger = opts.asMaster === false
    ? new Ledger({ store, log: silentLogger(), masterKey: opts.masterSigner.publicKey })
    : new Ledger({ store, log: silentLogger(), masterSigner: opts.masterSigner })
  await ledger.open()
  return ledger
}

/** Seconds since `start` (a performance.now() value). */
export function secondsSince (start: number): number { return (performance.now() - start) / 1000 }
