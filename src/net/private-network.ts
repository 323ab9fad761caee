import { preSharedKey } from '@libp2p/pnet'
import type { ConnectionProtector, Libp2p } from '@libp2p/interface'
import { errorMessage } from '../base/errors.js'

/** The first line of the libp2p/IPFS swarm key format (`/key/swarm/psk/1.0.0/`, `/base16/`, the key). */
export const SWARM_KEY_HEADER = '/key/swarm/psk/1.0.0/'

/** The name of the error a private network's nonce exchange fails with. */
const PRIVATE_NETWORK_ERROR = 'PrivateNetworkError'

/** The names of the errors of a dial whose TCP connection was made but whose handshake (pnet, noise) failed. */
const HANDSHAKE_ERRORS = new Set(['EncryptionFailedError', PRIVATE_NETWORK_ERROR])

/** The private network's protector (libp2p pnet: XSalsa20 with the pre-shared key), its failures named. */
export function privateNetwork (key: Uint8Array): () => ConnectionProtector {
  const psk = new TextEncoder().encode(`${SWARM_KEY_HEADER}\n/base16/\n${Buffer.from(key).toString('hex')}`)
  const pnet = preSharedKey({ psk })
  return () => {
    const inner = pnet()
    return {
      async protect (connection, options) {
        try {
          return await inner.protect(connection, options)
        } catch (err) {
          const named = new Error(`private network handshake failed: ${errorMessage(err)}`, { cause: err })
          named.name = PRIVATE_NETWORK_ERROR
          throw named
        }
      }
    }
  }
}

/** Whether each running host is on a private network, for the hints on failed dials. */
const privateHosts = new WeakMap<Libp2p, boolean>()

/** Records whether `libp2p` runs on a private network (its failed dials then say so). */
export function markPrivateNetwork (libp2p: Libp2p, isPrivate: boolean): void {
  privateHosts.set(libp2p, isPrivate)
}

/**
 * A dial whose handshake failed says what a private network has to do with it: libp2p's own
 * message ("read ECONNRESET", a timeout) does not.
 */
export function withHandshakeHint (libp2p: Libp2p, err: unknown): unknown {
  if (!(err instanceof Error) || !HANDSHAKE_ERRORS.has(err.name)) return err
  const hint = privateHosts.get(libp2p) === true
    ? 'this node is on a private network: the peer needs the same NETWORK_KEY'
    : 'if the peer is on a private network, this node needs its NETWORK_KEY'
  const hinted = new Error(`${err.message} (${hint})`, { cause: err })
  hinted.name = err.name
  return hinted
}
