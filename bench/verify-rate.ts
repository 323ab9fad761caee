import { createPrivateKey, createPublicKey, randomBytes, sign, verify } from 'node:crypto'
import { join } from 'node:path'
import { chainEntries, GENESIS_HASH, type Entry } from '../src/ledger/entry.js'
import { checkpointSigner } from '../test/helpers/checkpoints.js'
import { Ledger } from '../src/ledger/ledger.js'
import { LevelStore } from '../src/ledger/level-store.js'
import { silentLogger } from '../src/base/logger.js'
import { Ed25519Signer, verifySignature } from '../src/policies/keys.js'
import type { Policy } from '../src/policies/policy.js'
import { signingPayload } from '../src/policies/prepare.js'
import { validatePolicy, verifyPolicy } from '../src/policies/validate.js'
import { envInt, makePolicies, round, tempDir, withCleanup } from './lib/harness.js'

/**
 * verify: signature verification on the sync path, entries per second, against node:crypto's
 * raw Ed25519 verify measured in the same run on the same messages (each policy's signing
 * payload, ~250 bytes). From the inside out:
 *
 * - raw: crypto.verify with a ready KeyObject and signature bytes — the ceiling on one core;
 * - verifySignature: the same from hex strings (key cache, hex decoding);
 * - verifyPolicy: the id recomputed (canonical JSON + sha256) and the signature checked;
 * - validatePolicy + verifyPolicy: what a replica does to each policy before authorization;
 * - the verify pool (src/policies/verify-pool.ts, when present): signatures on every core;
 * - Ledger.applyBatch: the whole sync path for a batch of BENCH_VERIFY_BATCH (default 10,000,
 *   a full sync response): hash chain, head signature, every policy, authorization, the
 *   LevelDB write and the state update, on a fresh replica ledger.
 */
export interface VerifyRow {
  what: string
  entries: number
  entries_per_s: number
  us_each: number
  /** entries_per_s ÷ raw node:crypto verifies per second (one core) */
  vs_raw: number
}

async function timeAsync (fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now()
  await fn()
  return performance.now() - t0
}

/** The verify pool, when this tree has one (it is optional to this benchmark). */
interface Pool { firstInvalid: (p: Policy[]) => Promise<number>, close?: () => Promise<void> }
async function loadVerifyPool (): Promise<Pool | undefined> {
  try {
    const mod = await import('../src/policies/verify-pool.js' as string) as { verifyPool?: Pool }
    return mod.verifyPool
  } catch {
    return undefined
  }
}

export async function verifyRate (opts: { entries?: number, batch?: number } = {}): Promise<VerifyRow[]> {
  const count = opts.entries ?? envInt('BENCH_VERIFY', 20_000)
  const batch = Math.min(count, opts.batch ?? envInt('BENCH_VERIFY_BATCH', 10_000))
  return await withCleanup(async t => {
    const seed = randomBytes(32)
    const author = new Ed25519Signer(seed)
    const policies = makePolicies(count, { signer: author, tag: 'v' })
    const messages = policies.map(p => Buffer.from(signingPayload(p)))
    const signatures = policies.map(p => Buffer.from(String(Object.values(p)[0].signature), 'hex'))
    const privateKey = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' })
    const publicKey = createPublicKey(privateKey)
    if (!verify(null, messages[0], publicKey, signatures[0]) || !verify(null, messages[0], publicKey, sign(null, messages[0], privateKey))) throw new Error('verify: the raw check does not verify')
    const publicHex = author.publicKey
    const signatureHex = signatures.map(s => s.toString('hex'))

    // warm-up of each path (JIT), not measured
    for (let i = 0; i < Math.min(500, count); i++) { verify(null, messages[i], publicKey, signatures[i]); verifyPolicy(policies[i]); validatePolicy(policies[i]) }

    // The in-process checks run in `rounds` interleaved rounds over slices of the policies;
    // each reports its best round (the one least disturbed by other load on the machine).
    const rounds = Math.max(1, Math.min(5, Math.floor(count / 200)))
    const slice = Math.floor(count / rounds)
    const variants: Array<[string, (from: number, to: number) => Promise<void> | void]> = [
      ['node:crypto Ed25519 verify, raw (KeyObject + bytes), 1 core', (from, to) => { for (let i = from; i < to; i++) if (!verify(null, messages[i], publicKey, signatures[i])) throw new Error('bad') }],
      ['verifySignature (hex key and signature)', (from, to) => { for (let i = from; i < to; i++) if (!verifySignature(publicHex, messages[i], signatureHex[i])) throw new Error('bad') }],
      ['verifyPolicy (id recomputed + signature)', (from, to) => { for (let i = from; i < to; i++) verifyPolicy(policies[i]) }],
      ['validatePolicy + verifyPolicy (per policy on the sync path)', (from, to) => { for (let i = from; i < to; i++) { validatePolicy(policies[i]); verifyPolicy(policies[i]) } }]
    ]
    const pool = await loadVerifyPool()
    if (pool !== undefined) {
      await pool.firstInvalid(policies.slice(0, Math.min(1000, count))) // starts its threads
      // its threads would keep this process alive: stopped at cleanup (they restart on next use)
      t.teardown(async () => { await pool.close?.() })
      variants.push(['verify pool (verifyPolicy on every core)', async (from, to) => { if (await pool.firstInvalid(policies.slice(from, to)) !== -1) throw new Error('bad') }])
    }
    const best = new Map<string, number>()
    for (let r = 0; r < rounds; r++) {
      for (const [what, fn] of variants) {
        const ms = await timeAsync(async () => { await fn(r * slice, (r + 1) * slice) })
        best.set(what, Math.min(best.get(what) ?? Infinity, ms))
      }
    }
    const raw = slice / (best.get(variants[0][0])! / 1000)
    const rows: VerifyRow[] = []
    const add = (what: string, n: number, ms: number): void => {
      const perS = n / (ms / 1000)
      rows.push({ what, entries: n, entries_per_s: Math.round(perS), us_each: round((ms * 1000) / n, 2), vs_raw: round(perS / raw, 3) })
    }
    for (const [what] of variants) add(`${what} (best of ${rounds})`, slice, best.get(what)!)

    // the whole sync path, batch by batch, on a fresh replica ledger
    const master = new Ed25519Signer(randomBytes(32))
    const entries: Entry[] = chainEntries({ seq: 0, hash: GENESIS_HASH }, policies.map(policy => ({ op: 'put' as const, policy })))
    const replica = new Ledger({ store: new LevelStore({ path: join(tempDir(t, 'lm-bench-verify-'), 'ledger'), durable: false }), log: silentLogger() })
    await replica.open()
    t.teardown(async () => { await replica.close() })
    const signCheckpoint = checkpointSigner(master)
    const heads: Array<{ run: Entry[], head: ReturnType<typeof signCheckpoint> }> = []
    for (let i = 0; i < entries.length; i += batch) {
      const run = entries.slice(i, i + batch)
      heads.push({ run, head: signCheckpoint(run[run.length - 1], run) })
    }
    const applyMs = await timeAsync(async () => { for (const { run, head } of heads) await replica.applyBatch(run, head) })
    if (replica.head.seq !== count) throw new Error(`verify: the replica applied ${replica.head.seq} of ${count}`)
    add(`Ledger.applyBatch, batches of ${batch} (whole sync path)`, count, applyMs)
    return rows
  })
}
