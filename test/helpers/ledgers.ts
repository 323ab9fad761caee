import { silentLogger } from '../../src/base/logger.js'
import { Ledger } from '../../src/ledger/ledger.js'
import { LevelStore } from '../../src/ledger/level-store.js'
import type { Signer } from '../../src/policies/keys.js'
import type { Teardown } from './tmp.js'

/** A ledger on a LevelDB store at `path` (a master's with `masterSigner`), closed at teardown. */
export async function ledgerAt (t: Teardown, path: string, masterSigner?: Signer): Promise<Ledger> {
  const ledger = new Ledger({ store: new LevelStore({ path }), log: silentLogger(), masterSigner })
  await ledger.open()
  t.teardown(async () => { await ledger.close() })
  return ledger
}

/** What sync would bring `to` from `from`: every entry past its head, with `from`'s signed head. */
export async function syncLedger (from: Ledger, to: Ledger): Promise<void> {
  const entries = await from.store.range(to.head.seq + 1, Infinity)
  if (entries.length > 0) await to.applyBatch(entries, from.signedHead!)
}
