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
  private readonly peers = new Map<string, PeerSync>()

  constructor (private readonly max = MAX_TRACKED_PEERS) {}

  note (peer: string, seq: number, watching: boolean): void {
    this.peers.delete(peer)
    this.peers.set(peer, { peer, seq, at: Date.now(), watching })
    if (this.peers.size > this.max) this.peers.delete(this.peers.keys().next().value!)
  }

  watchEnded (peer: string): void {
    const known = this.peers.get(peer)
    if (known !== undefined) known.watching = false
  }

  get (peer: string): PeerSync | undefined { return this.peers.get(peer) }

  list (): PeerSync[] { return [...this.peers.values()] }
}
