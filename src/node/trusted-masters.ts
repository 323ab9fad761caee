import type { PeerId } from '@libp2p/interface'
import { publicKeyHexOf } from '../policies/keys.js'
import { parseJoinToken, pinAdmits } from '../services/admission/tokens.js'

/**
 * The insert and lease clients' check of the peer they reached (ProtocolComponents.checkPeer):
 * once this node's ledger trusts a master key (pinned from the first signed head, as sync
 * does), inserts, whose settings may be secret, and lease renewals go only to a peer whose
 * noise-authenticated key is one of the masters' the ledger trusts; whoever else answers at a
 * master's address (or at the address a `not_active` answer pointed to) is refused, and the
 * client goes on to the next master. Before the first head there is nothing to check against.
 * A light worker checks against its LightReplica's keys (the first master's, and those its
 * proven `master_key` policies declare).
 */
export function trustedMasterCheck (ledger: () => { readonly masterKey: string | undefined, readonly masterKeys: string[] } | undefined): (peer: PeerId) => string | undefined {
  return peer => {
    const current = ledger()
    if (current === undefined || current.masterKey === undefined) return undefined
    const key = publicKeyHexOf(peer)
    if (key !== undefined && current.masterKeys.includes(key)) return undefined
    return `its key ${key ?? '(not Ed25519)'} is not a master key this node's ledger trusts`
  }
}

/**
 * The join client's check of the peer it reached (JOIN_TOKEN): the token is shown only to a
 * peer whose noise-authenticated key is one of the masters the token pins; anyone else at a
 * master's address is refused before the token is sent, and the join goes on to the next
 * master. A token without pins checks nothing.
 */
export function joinTokenPinCheck (tokenText: string | undefined): ((peer: PeerId) => string | undefined) | undefined {
  if (tokenText === undefined) return undefined
  const token = parseJoinToken(tokenText)
  if (token.pins.length === 0) return undefined
  return peer => {
    const key = publicKeyHexOf(peer)
    return pinAdmits(token, key) ? undefined : `its key ${key ?? '(not Ed25519)'} is not one of the masters the join token names (${token.pins.join(', ')}): the token is not shown to it`
  }
}
