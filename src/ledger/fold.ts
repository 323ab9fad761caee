import { LedgerMeshError } from '../base/errors.js'
import { GENESIS_HASH, verifyChainLinks } from './entry.js'
import { type Head, type SignedHead, verifyHead } from './head.js'
import { LedgerState } from './state.js'
import { trustedMasterKeys } from './ledger-rules.js'
import type { LedgerStore } from './store.js'

/** How many entries one store read brings while folding the log. */
const FOLD_PAGE = 5000

/**
 * Reads a store's whole log into a new state, verifying every chain link, that the log ends
 * at the store's head, and that the stored signed head is that head's and signed by
 * `trustedMasterKey` (when known). A log that does not verify is reported, never half-loaded.
 */
export async function foldLog (store: LedgerStore, trustedMasterKey: string | undefined): Promise<{ state: LedgerState, head: Head, signed: SignedHead | undefined }> {
  const state = new LedgerState()
  let head: Head = { seq: 0, hash: GENESIS_HASH }
  for (;;) {
    const page = await store.range(head.seq + 1, FOLD_PAGE)
    if (page.length === 0) break
    const broken = verifyChainLinks(head, page)
    if (broken !== undefined) {
      throw new LedgerMeshError('chain_broken', `ledger store ${store.location} does not verify: ${broken}`, { seq: head.seq + 1 })
    }
    for (const entry of page) state.apply(entry)
    const last = page[page.length - 1]
    head = { seq: last.seq, hash: last.hash }
  }
  const stored = await store.head()
  if (stored.seq !== head.seq || stored.hash !== head.hash) {
    throw new LedgerMeshError('chain_broken', `ledger store ${store.location} says its head is seq ${stored.seq}, but its log ends at seq ${head.seq}`)
  }
  const signed = await store.signedHead()
  if (signed !== undefined) {
    if (signed.seq !== head.seq || signed.hash !== head.hash) {
      throw new LedgerMeshError('chain_broken', `ledger store ${store.location}: signed head seq ${signed.seq} does not match the log's head seq ${head.seq}`)
    }
    // signed by the first master's key, or by another master's key the ledger declares
    if (trustedMasterKey !== undefined && (!trustedMasterKeys(state, trustedMasterKey).has(signed.publicKey) || !verifyHead(signed, signed.publicKey))) {
      throw new LedgerMeshError('chain_broken', `ledger store ${store.location}: the signed head at seq ${signed.seq} is not signed by the trusted master key`)
    }
  }
  return { state, head, signed }
}
