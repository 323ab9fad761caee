import { join } from 'node:path'
import { LevelStore } from '../../src/ledger/level-store.js'
import { type Entry, GENESIS_HASH, verifyChainLinks } from '../../src/ledger/entry.js'
import { policyBody } from '../../src/policies/policy.js'

export interface ChainReport {
  entries: Entry[]
  /** undefined when every link verifies and seqs run 1..n without a gap */
  broken?: string
  /** policy id → seq, for puts */
  seqOf: Map<string, number>
}

/** Reads a stopped node's LevelDB ledger (`<home>/ledger`) and verifies its whole chain. */
export async function readChain (home: string): Promise<ChainReport> {
  const store = new LevelStore({ path: join(home, 'ledger') })
  await store.open()
  try {
    const entries: Entry[] = []
    for (;;) {
      const page = await store.range(entries.length + 1, 5000)
      if (page.length === 0) break
      entries.push(...page)
    }
    const broken = verifyChainLinks({ seq: 0, hash: GENESIS_HASH }, entries)
    const seqOf = new Map<string, number>()
    for (const e of entries) if (e.op === 'put') seqOf.set(String(policyBody(e.policy).id), e.seq)
    return { entries, broken, seqOf }
  } finally {
    await store.close()
  }
}
