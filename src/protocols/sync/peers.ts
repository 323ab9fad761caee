/** How many clients a sync server remembers; past it, the one heard from least recently goes. */
export const MAX_TRACKED_PEERS = 10_000

/** A sync client as this server last saw it. */
export interface PeerSync {
  /** its libp2p peer id */
  peer: string
  /** the seq it holds: what it last asked to sync after, or what a watch last sent it */
  seq: number
  /** when (ms since the epoch) */
  at: number
  /** whether a watch stream of its is open now */
  watching: boolean
}

/**
 * Where each sync client stands, as the requests and watch pushes this server handled show it:
 * how a master knows every replica's head and lag (`GET /v1/network`) without asking them.
 */
export class SyncPeers {
  private readonly peers = new Map<string, { seq: number, at: number, watches: number }>()

  constructor (private readonly max = MAX_TRACKED_PEERS) {}

  /** The client holds `seq` now (it asked after it, or a watch sent it up to it). */
  note (peer: string, seq: number): void {
    const known = this.peers.get(peer)
    this.peers.delete(peer)
    this.peers.set(peer, { seq, at: Date.now(), watches: known?.watches ?? 0 })
    if (this.peers.size > this.max) this.peers.delete(this.peers.keys().next().value!)
  }

  watchStarted (peer: string): void {
    const known = this.peers.get(peer)
    if (known !== undefined) known.watches++
  }

  watchEnded (peer: string): void {
    const known = this.peers.get(peer)
    if (known !== undefined) known.watches = Math.max(0, known.watches - 1)
  }

  get (peer: string): PeerSync | undefined {
    const known = this.peers.get(peer)
    return known === undefined ? undefined : { peer, seq: known.seq, at: known.at, watching: known.watches > 0 }
  }

  list (): PeerSync[] { return [...this.peers.keys()].map(peer => this.get(peer)!) }
}
