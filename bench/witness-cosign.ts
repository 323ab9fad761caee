import { loadOrCreateIdentity } from '../src/node/identity.js'
import { startNode } from '../test/helpers/node-process.js'
import { insert } from '../test/helpers/fleet.js'
import { httpJson } from '../test/helpers/http.js'
import { freePort } from '../test/helpers/net.js'
import { envInt, percentile, round, tempDir, withCleanup } from './lib/harness.js'

/**
 * witness-cosign: a master node whose network policy names 3 witness nodes (WITNESS_QUORUM=3),
 * all real processes on loopback. BENCH_COSIGN_INSERTS sequential inserts (default 300), one
 * every 20 ms; for each, the time from the insert's acknowledgement (and from when it was
 * sent) until the master holds a checkpoint of at least its seq cosigned by all 3 witnesses
 * (read from GET /v1/ledger/head every 2 ms, so each time is up to 2 ms late).
 */
const POLL_MS = 2
const LIMIT_MS = 10_000

export async function witnessCosign (opts: { inserts?: number } = {}): Promise<object[]> {
  return await withCleanup(async t => {
    const inserts = opts.inserts ?? envInt('BENCH_COSIGN_INSERTS', 300)
    const specs = await Promise.all([1, 2, 3].map(async i => {
      const home = tempDir(t, `lm-bench-witness${i}-`)
      const { signer } = await loadOrCreateIdentity(home)
      return { name: `bench-witness-${i}`, home, tcpPort: await freePort(), key: signer.publicKey }
    }))
    const master = await startNode(t, { type: 'master', name: 'bench-cosign-master', env: { WITNESSES: specs.map(w => `${w.key}@127.0.0.1:${w.tcpPort}`).join(','), WITNESS_QUORUM: 3 } })
    await Promise.all(specs.map(async w => await startNode(t, { type: 'member', name: w.name, home: w.home, tcpPort: w.tcpPort, env: { LEDGER_CONN: master.ledgerConn, BLOCKCHAIN_SYNC: '1 second', WITNESS: 'true' } })))
    const witnessedSize = async (): Promise<number> => ((await httpJson(`${master.url}/v1/ledger/head`, 10_000)) as { witnessed: { size: number } | null }).witnessed?.size ?? 0
    const waitWitnessed = async (seq: number): Promise<void> => {
      const deadline = performance.now() + LIMIT_MS
      while (await witnessedSize() < seq) {
        if (performance.now() > deadline) throw new Error(`witness-cosign: no checkpoint of seq ${seq} cosigned by 3 witnesses within ${LIMIT_MS} ms`)
        await new Promise(resolve => setTimeout(resolve, POLL_MS))
      }
    }
    // the witnesses' first cosignatures (and their connections) before timing
    for (let i = 0; i < 5; i++) await waitWitnessed((await insert(master, { probe: { name: `warm${i}` } })).seq)
    const fromAck: number[] = []
    const fromSent: number[] = []
    for (let i = 0; i < inserts; i++) {
      const sent = performance.now()
      const { seq } = await insert(master, { probe: { name: `cosign${i}` } })
      const acked = performance.now()
      await waitWitnessed(seq)
      const done = performance.now()
      fromAck.push(done - acked)
      fromSent.push(done - sent)
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    const p99 = percentile(fromAck, 99)
    return [
      { what: 'checkpoint cosigned by 3 of 3 witnesses, from the insert\'s acknowledgement', inserts, p50_ms: round(percentile(fromAck, 50), 1), p99_ms: round(p99, 1), max_ms: round(Math.max(...fromAck), 1), goal: `p99 < 250 ms: ${p99 < 250 ? 'met' : 'missed'}` },
      { what: 'the same, from when the insert was sent', inserts, p50_ms: round(percentile(fromSent, 50), 1), p99_ms: round(percentile(fromSent, 99), 1), max_ms: round(Math.max(...fromSent), 1) }
    ]
  })
}
