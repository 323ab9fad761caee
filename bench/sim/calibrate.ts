import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ledger } from '../../src/ledger/ledger.js'
import { LevelStore } from '../../src/ledger/level-store.js'
import { silentLogger } from '../../src/base/logger.js'
import { Ed25519Signer } from '../../src/policies/keys.js'
import { preparePolicy } from '../../src/policies/prepare.js'
import { encodeResponse } from '../../src/protocols/sync/codec.js'
import { percentile } from '../lib/harness.js'

/**
 * The costs on an insert's critical path, measured on the real code in this process: the
 * master's commit (validate, authorize, chain, sign, durable LevelDB write) as CPU and as
 * wall time, encoding the push of one entry with its signed head (once per watch stream),
 * and a replica's verify-and-apply of it (LevelDB not synced, as replicas write).
 */
export interface CriticalCosts { commitMs: number, durableMs: number, encodeMs: number, applyMs: number }

const cpuMs = (since: NodeJS.CpuUsage): number => { const c = process.cpuUsage(since); return (c.user + c.system) / 1000 }

export async function criticalCosts (inserts = 600): Promise<CriticalCosts> {
  const dir = mkdtempSync(join(tmpdir(), 'lm-sim-calibrate-'))
  const masterSigner = new Ed25519Signer(randomBytes(32))
  const master = new Ledger({ store: new LevelStore({ path: join(dir, 'master'), durable: true }), log: silentLogger(), masterSigner })
  const replica = new Ledger({ store: new LevelStore({ path: join(dir, 'replica'), durable: false }), log: silentLogger(), masterKey: masterSigner.publicKey })
  try {
    await master.open()
    await replica.open()
    const author = new Ed25519Signer(randomBytes(32))
    const commitCpu: number[] = []
    const commitWall: number[] = []
    const encode: number[] = []
    const apply: number[] = []
    for (let i = 0; i < inserts; i++) {
      const policy = preparePolicy({ probe: { name: `calibrate-${i}` } }, author)
      let cpu = process.cpuUsage()
      const started = performance.now()
      const entry = await master.submit({ op: 'put', policy })
      commitWall.push(performance.now() - started)
      commitCpu.push(cpuMs(cpu))
      const head = master.signedHead!
      cpu = process.cpuUsage()
      encodeResponse({ entries: [entry], head, more: false })
      encode.push(cpuMs(cpu))
      cpu = process.cpuUsage()
      await replica.applyBatch([entry], head)
      apply.push(cpuMs(cpu))
    }
    // the first hundred warm the JIT up
    const median = (xs: number[]): number => percentile(xs.slice(100), 50)
    return { commitMs: median(commitCpu), durableMs: Math.max(0, median(commitWall) - median(commitCpu)), encodeMs: median(encode), applyMs: median(apply) }
  } finally {
    await master.close()
    await replica.close()
    rmSync(dir, { recursive: true, force: true })
  }
}
