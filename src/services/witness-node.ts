import type { Logger } from '../base/logger.js'
import type { ForkWatch } from '../ledger/fork-watch.js'
import { logOrigin } from '../ledger/head.js'
import type { Ledger } from '../ledger/ledger.js'
import { type Checkpoint, parseStateLine } from '../ledger/tlog/checkpoint.js'
import { cosignerKey } from '../ledger/tlog/note.js'
import { Witness, type WitnessRecord } from '../ledger/tlog/witness.js'
import { witnessName } from '../ledger/witnessed.js'
import type { Signer } from '../policies/keys.js'

/** Where a witness keeps the last checkpoint it cosigned for an origin: the store's meta. */
const recordKey = (origin: string): string => `witness:${origin}`
/** How long a witness waits for its replica to reach a checkpoint's size to check its state line. */
const STATE_WAIT_MS = 2000

/**
 * The witness's additional statement: the checkpoint's state line is the state root this
 * node computed itself, at that size, from the entries it verified. A witness whose replica is
 * not there yet answers 503 and the master asks again.
 */
async function stateLineRefusal (ledger: Ledger, checkpoint: Checkpoint): Promise<{ status: number, reason: string } | undefined> {
  let state
  try {
    state = parseStateLine(checkpoint.extensions)
  } catch (err) {
    return { status: 422, reason: (err as Error).message }
  }
  if (state === undefined) return undefined
  if (ledger.head.seq < checkpoint.size) await ledger.waitForSeq(checkpoint.size, STATE_WAIT_MS).catch(() => false)
  const mine = ledger.stateRoot.commitmentAt(checkpoint.size)
  if (mine === undefined) return { status: 503, reason: `this witness has not computed the state at size ${checkpoint.size} (its replica is at ${ledger.head.seq}): ask again with a later checkpoint` }
  const named = state.root.toString('hex')
  if (mine.root === named && mine.size === state.size) return undefined
  return { status: 422, reason: `the state line names root ${named.slice(0, 12)}… over ${state.size} policies at size ${checkpoint.size}, but this witness computed ${mine.root.slice(0, 12)}… over ${mine.size} from the entries it verified` }
}

/**
 * WITNESS=true: this node witnesses its own network's log (c2sp.org/tlog-witness), under the
 * master keys its replica trusts. One Witness serves `POST /add-checkpoint` and the witness
 * protocol the master uses; a second history it is shown is a fork this node reports.
 */
export function nodeWitness (opts: { ledger: () => Ledger | undefined, signer: Signer, forks: () => ForkWatch | undefined, log: Logger }): Witness {
  const { log } = opts
  const ledgerOf = (): Ledger => {
    const ledger = opts.ledger()
    if (ledger === undefined) throw new Error('no ledger store is connected')
    return ledger
  }
  return new Witness({
    name: witnessName(opts.signer.publicKey),
    signer: opts.signer,
    logKeys: origin => {
      const root = opts.ledger()?.masterKey
      if (root === undefined || origin !== logOrigin(root)) return undefined
      return ledgerOf().masterKeys.map(publicKey => cosignerKey(origin, publicKey))
    },
    load: async origin => {
      const stored = await ledgerOf().store.getMeta(recordKey(origin))
      return stored === undefined ? undefined : JSON.parse(stored) as WitnessRecord
    },
    // on disk before the cosignature goes out, even on a replica whose store does not fsync:
    // a witness that forgot what it cosigned could be made to cosign a second history
    save: async (origin, record) => { await ledgerOf().store.setMeta(recordKey(origin), JSON.stringify(record), { durable: true }) },
    checkExtensions: async checkpoint => await stateLineRefusal(ledgerOf(), checkpoint),
    onFork: evidence => {
      log.error({ fork_detected: evidence }, `fork detected: the log ${evidence.origin} signed a checkpoint no consistency proof links to the one this witness cosigned (${evidence.reason}); not cosigned`)
      void opts.forks()?.detected(evidence.presented, 'witness', evidence.reason, evidence.cosigned)
    }
  })
}
