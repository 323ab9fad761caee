import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { withHandshakeHint } from './private-network.js'

/** The libp2p host the protocols run on (any services). */
export type NetNode = Libp2p

/** Where a stream goes: an address to dial, or a peer already known. */
export type StreamTarget = Multiaddr | PeerId

const pendingDials = new WeakMap<NetNode, Map<string, Promise<Connection>>>()
/** the peer each stream openStream opened goes to (a kept stream is checked again before reuse) */
const streamPeers = new WeakMap<Stream, PeerId>()

/** The peer a stream from openStream goes to. */
export function remotePeerOf (stream: Stream): PeerId | undefined {
  return streamPeers.get(stream)
}

/**
 * Opens a protocol stream to `target`, sharing one connection per target. Many concurrent
 * dials to a peer not yet connected would otherwise race to open several connections, and
 * libp2p resets the streams of the duplicates it closes.
 */
export async function openStream (libp2p: NetNode, target: StreamTarget, protocol: string, signal: AbortSignal, checkPeer?: (peer: PeerId) => string | undefined): Promise<Stream> {
  let dials = pendingDials.get(libp2p)
  if (dials === undefined) { dials = new Map(); pendingDials.set(libp2p, dials) }
  const key = target.toString()
  let connecting = dials.get(key)
  if (connecting === undefined) {
    connecting = libp2p.dial(target, { signal })
    dials.set(key, connecting)
    connecting.catch(() => {}).finally(() => { dials.delete(key) })
  }
  let connection: Connection
  try {
    connection = await connecting
  } catch (err) {
    throw withHandshakeHint(libp2p, err)
  }
  const refused = checkPeer?.(connection.remotePeer)
  if (refused !== undefined) throw new Error(`the peer there (${connection.remotePeer.toString()}) is refused: ${refused}`)
  const stream = await connection.newStream(protocol, { signal })
  streamPeers.set(stream, connection.remotePeer)
  return stream
}
