import type { PeerId } from '@libp2p/interface'
import { errorMessage } from '../base/errors.js'
import type { Logger } from '../base/logger.js'
import type { ForkWatch } from '../ledger/fork-watch.js'
import type { ProofFrom } from '../ledger/tlog/tree-check.js'
import { headFromNote, headNote, logOrigin } from '../ledger/head.js'
import type { Ledger } from '../ledger/ledger.js'
import type { NetNode } from '../net/stream.js'
import { type CheckpointExchange, type CheckpointProtocol, GOSSIP_DEBOUNCE_MS, GOSSIP_FANOUT, GOSSIP_INTERVAL_MS } from '../protocols/checkpoint/index.js'
import type { ProcessStatus, Service } from './service.js'

export interface CheckpointGossipOptions {
  libp2p: NetNode
  protocol: CheckpointProtocol
  ledger: Ledger
  forks: ForkWatch
  log: Logger
  /** the latest cosigned checkpoint this node holds, when the network has witnesses */
  witnessed?: () => string | undefined
  /** told of each note a peer showed that is consistent with this node's tree (it may carry cosignatures to keep) */
  onNote?: (note: string) => void
  fanout?: number
  intervalMs?: number
}

/**
 * Checkpoint gossip: after each new head (and every few seconds) the node shows its latest
 * checkpoint to a few connected peers, which answer with theirs; each side checks the other's
 * against the tree it verified (ForkWatch). Once a node holds fork evidence it shows both
 * checkpoints too, so every node that talks to it checks the evidence for itself.
 */
export class CheckpointGossip implements Service {
  readonly name = 'Checkpoint Gossip'
  private timer?: NodeJS.Timeout
  private debounce?: NodeJS.Timeout
  private running = false
  private rounds = 0
  private exchanges = 0

  constructor (private readonly opts: CheckpointGossipOptions) {}

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    await this.opts.protocol.serve(async (notes, peer) => await this.answer(notes, peer))
    this.opts.ledger.on('appended', this.soon)
    this.timer = setInterval(() => { void this.round() }, this.opts.intervalMs ?? GOSSIP_INTERVAL_MS)
    this.timer.unref()
  }

  async stop (): Promise<void> {
    this.running = false
    clearInterval(this.timer)
    clearTimeout(this.debounce)
    this.opts.ledger.off('appended', this.soon)
    await this.opts.protocol.stop()
  }

  status (): ProcessStatus {
    return this.running ? { status: 'Running', details: `Rounds: ${this.rounds}, exchanges: ${this.exchanges}` } : { status: 'Stopped' }
  }

  /** A round shortly (coalesced): after a new head or a newly witnessed checkpoint. */
  readonly soon = (): void => {
    if (!this.running || this.debounce !== undefined) return
    this.debounce = setTimeout(() => { this.debounce = undefined; void this.round() }, GOSSIP_DEBOUNCE_MS)
    this.debounce.unref()
  }

  /** What this node shows: its latest checkpoint, its latest witnessed one, and any fork evidence. */
  notes (): string[] {
    const signed = this.opts.ledger.signedHead
    if (signed === undefined) return []
    const notes = [headNote(signed)]
    const witnessed = this.opts.witnessed?.()
    if (witnessed !== undefined) notes.push(witnessed)
    const fork = this.opts.forks.current
    if (fork !== undefined) notes.push(...fork.checkpoints.filter(n => n !== ''))
    return notes.slice(0, 4)
  }

  /** Checks each note a peer showed; a note that is not this network's signed checkpoint is only logged. */
  private async check (notes: readonly string[], peer: string, proof?: ProofFrom): Promise<void> {
    for (const [i, note] of notes.entries()) {
      try {
        // a proof goes from this node's tree to the first note only
        const outcome = await this.opts.forks.check(note, peer, i === 0 ? proof : undefined)
        if (outcome === 'consistent') this.opts.onNote?.(note)
      } catch (err) {
        this.opts.log.debug({ peer, err: errorMessage(err) }, 'a gossiped checkpoint did not verify: ignored')
      }
    }
  }

  /** Serving an exchange: check what the peer showed, answer with this node's notes and a proof toward them. */
  private async answer (notes: string[], peer: string): Promise<CheckpointExchange> {
    await this.check(notes, peer)
    return { notes: this.notes(), proof: this.proofFrom(notes[0]) }
  }

  /** The tree size a checkpoint note of this network names, when its signature verifies. */
  private sizeOf (note: string | undefined): number | undefined {
    const { ledger } = this.opts
    const root = ledger.masterKey
    if (note === undefined || root === undefined) return undefined
    try {
      return headFromNote(note, logOrigin(root), ledger.masterKeys).seq
    } catch {
      return undefined
    }
  }

  /** A consistency proof from the tree `note` names to the checkpoint this node shows, when that is larger. */
  private proofFrom (note: string | undefined): Uint8Array[] {
    const { ledger } = this.opts
    const from = this.sizeOf(note)
    const to = ledger.signedHead?.seq ?? 0
    return from !== undefined && from > 0 && from < to ? ledger.tree.consistencyProof(from, to) : []
  }

  /** One round: exchange with up to `fanout` connected peers, chosen at random. */
  async round (): Promise<void> {
    if (!this.running) return
    const notes = this.notes()
    if (notes.length === 0) return
    this.rounds++
    const peers = shuffled(this.opts.libp2p.getPeers()).slice(0, this.opts.fanout ?? GOSSIP_FANOUT)
    await Promise.all(peers.map(async peer => { await this.exchangeWith(peer, notes) }))
  }

  /** Exchanges checkpoints with every connected peer now (tests, and a node that just found a fork). */
  async exchangeWithAll (): Promise<void> {
    const notes = this.notes()
    await Promise.all(this.opts.libp2p.getPeers().map(async peer => { await this.exchangeWith(peer, notes) }))
  }

  private async exchangeWith (peer: PeerId, notes: string[]): Promise<void> {
    try {
      const theirs = await this.opts.protocol.exchange(peer, notes)
      this.exchanges++
      // the proof goes from the checkpoint this node sent, whatever its tree holds by now
      const from = this.sizeOf(notes[0])
      await this.check(theirs.notes, peer.toString(), from === undefined || theirs.proof.length === 0 ? undefined : { from, hashes: theirs.proof })
    } catch (err) {
      // a peer without a ledger (or an older one) does not serve the protocol
      this.opts.log.debug({ peer: peer.toString(), err: errorMessage(err) }, 'checkpoint exchange failed')
    }
  }
}

function shuffled<T> (items: T[]): T[] {
  const copy = [...items]
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j], copy[i]]
  }
  return copy
}
