import { type JsonObject, type MultiSealedBox, sealToAll } from '../../src/policies/seal.js'

/**
 * A box sealed to `recipients` whose part for `victim` is garbage: the wrapped key of another
 * box for the same keys and context, so it unwraps but opens nothing. Only `victim` can tell.
 */
export function garbledFor (recipients: string[], victim: string, plaintext: JsonObject, context: string): MultiSealedBox {
  const box = sealToAll(recipients, plaintext, context) as MultiSealedBox
  const other = sealToAll(recipients, { other: true }, context) as MultiSealedBox
  box.sealed.keys = box.sealed.keys.map(k => k.to === victim ? other.sealed.keys.find(o => o.to === victim)! : k)
  return box
}
