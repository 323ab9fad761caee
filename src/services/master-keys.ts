import type { Logger } from '../base/logger.js'
import type { Entry, LedgerOp } from '../ledger/entry.js'
import type { RegisteredMaster } from '../ledger/pg-store.js'
import type { Signer } from '../policies/keys.js'
import { preparePolicy } from '../policies/prepare.js'

/** What declaring the masters' keys needs: the ledger's trusted keys and its writer, the registry, this master's key. */
export interface MasterKeysOptions {
  ledger: { readonly masterKeys: string[], submit: (op: LedgerOp) => Promise<Entry> }
  registry: { registeredMasters: () => Promise<RegisteredMaster[]> }
  signer: Signer
  log: Logger
}

/**
 * Run by the active master: declares on the ledger (a `master_key` policy, signed by this
 * master's key) every master key registered in the database that the ledger does not trust
 * yet, so replicas trust that master's heads before it can ever write. Answers the keys it
 * declared.
 */
export async function declareRegisteredMasters (opts: MasterKeysOptions): Promise<string[]> {
  const trusted = new Set(opts.ledger.masterKeys)
  const declared: string[] = []
  for (const master of await opts.registry.registeredMasters()) {
    if (trusted.has(master.key)) continue
    await opts.ledger.submit({ op: 'put', policy: preparePolicy({ master_key: { key: master.key, name: master.name, address: master.address } }, opts.signer) })
    opts.log.info({ key: master.key, name: master.name, address: master.address }, 'declared another master\'s key on the ledger')
    declared.push(master.key)
  }
  return declared
}
