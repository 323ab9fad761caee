import { Mutex } from 'async-mutex'
import { LedgerMeshError } from '../../base/errors.js'
import { type Entry, hashAndReleaseText } from '../../ledger/entry.js'
import { type Head, type SignedHead, headNote } from '../../ledger/head.js'
import { reject } from './client.js'
import { type SyncContext, short } from './context.js'

/** A recovery in progress: the replica is rewound once, before the first run from the agreed seq. */
export interface Recovery { rewound: boolean }

/**
 * Checks that `entries` follow on from `tip` (seqs in order, each linking to the one before),
 * and returns the new tip. Only the links are checked here: the hashes are computed once, when a
 * run is held for more pages (RunAssembler.endsAt) or else by Ledger.applyBatch (the run ends at
 * the signed head's hash, so a run whose content does not hash to its links is refused whole).
 */
export function link (ctx: SyncContext, tip: Head, entries: readonly Entry[]): Head {
  if (entries.length === 0) return tip
  ctx.stats.entriesIn += entries.length
  let last = tip
  for (const entry of entries) {
    let broken: string | undefined
    if (entry.seq !== last.seq + 1) broken = `entry seq ${entry.seq} does not follow seq ${last.seq}`
    else if (entry.prevHash !== last.hash) broken = `entry ${entry.seq} links to prev_hash ${short(entry.prevHash)}, expected ${short(last.hash)}`
    if (broken !== undefined) throw reject(ctx, new LedgerMeshError('chain_broken', `sync batch rejected: ${broken}`))
    last = { seq: entry.seq, hash: entry.hash }
  }
  return last
}

/**
 * The head a run is collected toward must be signed by a trusted master key (checked once per
 * head): the first master's, or one a trusted master declared, in the ledger or in the run's
 * entries received so far (`pending`).
 */
function checkHead (ctx: SyncContext, head: SignedHead, pending: readonly Entry[]): void {
  try {
    ctx.components.ledger.checkSignedHead(head, { pending })
  } catch (err) {
    throw reject(ctx, err)
  }
}

/**
 * Applies runs one at a time (a pull and a watch may both bring entries). When another pull
 * or watch moved the ledger meanwhile, only the part it lacks is applied. In a recovery the
 * replica is first rewound to the run's start, once the run's head has verified and is not
 * older than the replica's own.
 */
export class RunApplier {
  private readonly applying = new Mutex()

  constructor (private readonly ctx: SyncContext) {}

  async apply (run: Entry[], runStart: Head, head: SignedHead, recovery?: Recovery): Promise<number> {
    const { ledger } = this.ctx.components
    return await this.applying.runExclusive(async () => {
      const forks = this.ctx.components.forks
      forks?.assertFollowing()
      if (recovery !== undefined) {
        checkHead(this.ctx, head, run)
        const ours = ledger.signedHead
        if (forks !== undefined && ours !== undefined) {
          // both histories are signed by the network's masters: a restored or lying master, never one to follow silently
          await forks.detected(headNote(head), 'sync', `the sync source's log (signed head at seq ${head.seq}) diverges from this replica's after seq ${runStart.seq}`)
          forks.assertFollowing()
        }
        // checkpoints carry whole seconds: one signed in the same second is not newer either
        if (ours !== undefined && Date.parse(head.time) <= Date.parse(ours.time)) {
          throw reject(this.ctx, new LedgerMeshError('conflict', `the source's chain (head seq ${head.seq}, signed ${head.time}) is not newer than this replica's (head seq ${ours.seq}, signed ${ours.time}): not rewinding to it`))
        }
        await ledger.rewind(runStart.seq)
        recovery.rewound = true
      }
      let entries = run
      const current = ledger.head
      if (current.seq !== runStart.seq || current.hash !== runStart.hash) {
        if (current.seq >= head.seq) return 0
        const index = current.seq - runStart.seq - 1
        if (index < 0 || run[index].hash !== current.hash) {
          throw new LedgerMeshError('conflict', `the replica moved to seq ${current.seq} while a run after seq ${runStart.seq} was fetched, and the run does not continue it`)
        }
        entries = run.slice(index + 1)
      }
      try {
        await ledger.applyBatch(entries, head)
      } catch (err) {
        throw reject(this.ctx, err)
      }
      return entries.length
    })
  }
}

/**
 * A run of entries received from a source (by a pull's answers or a watch's frames), held in
 * memory until a signed head covers it exactly. The checks on what arrives are the same for
 * both: the entries link on, a head toward which more are to come is the master's (checked
 * once), and the run ends exactly at its head.
 */
export class RunAssembler {
  private pending: Entry[] = []
  /** pending entries hashed already (those before this index) */
  private hashedUpTo = 0
  private runStart: Head
  /** the last entry received (the run's start while it is empty) */
  tip: Head

  constructor (private readonly ctx: SyncContext, private readonly applier: RunApplier, start: Head) {
    this.runStart = start
    this.tip = start
  }

  /** entries held toward the next head */
  get size (): number { return this.pending.length }

  /** Adds entries already linked on from the tip (by link()), ending at `tip`. */
  take (entries: Entry[], tip: Head): void {
    this.pending.push(...entries)
    this.tip = tip
  }

  /**
   * The head the entries held make a whole run up to, or undefined when `more` are to come
   * toward it; throws when they cannot (beyond the head, short of it with nothing more, no
   * head, or a tip that is not the head's).
   */
  endsAt (head: SignedHead | undefined, more: boolean): SignedHead | undefined {
    const tip = this.tip
    if (head === undefined) throw reject(this.ctx, new LedgerMeshError('bad_message', `sync source sent entries up to seq ${tip.seq} and no signed head`))
    if (tip.seq > head.seq) {
      throw reject(this.ctx, new LedgerMeshError('bad_message', `sync source sent entries up to seq ${tip.seq}, beyond its signed head at seq ${head.seq}`))
    }
    if (tip.seq < head.seq) {
      if (!more) throw reject(this.ctx, new LedgerMeshError('bad_message', `sync source sent entries up to seq ${tip.seq}, short of its signed head at seq ${head.seq}`))
      // Held in memory until the head: check now that the head is the master's, so a source
      // cannot make this replica collect entries toward a made-up seq.
      checkHead(this.ctx, head, this.pending)
      // and hash what is held now, keeping the hashes instead of the policies' text
      const broken = hashAndReleaseText(this.pending, this.hashedUpTo)
      if (broken !== undefined) throw reject(this.ctx, new LedgerMeshError('chain_broken', `sync batch rejected: ${broken}`))
      this.hashedUpTo = this.pending.length
      return undefined
    }
    if (tip.hash !== head.hash) {
      throw reject(this.ctx, new LedgerMeshError('chain_broken', `sync entries end at seq ${tip.seq} with hash ${short(tip.hash)}, but the signed head has ${short(head.hash)}`))
    }
    return head
  }

  /** Applies the run (it ends at `head`: endsAt() said so) and starts the next one from its tip. */
  async apply (head: SignedHead, recovery?: Recovery): Promise<number> {
    const run = this.pending
    const runStart = this.runStart
    this.pending = []
    this.hashedUpTo = 0
    this.runStart = this.tip
    return await this.applier.apply(run, runStart, head, recovery)
  }
}
