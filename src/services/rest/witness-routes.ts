import type { FastifyInstance } from 'fastify'
import type { NodePort } from '../../commands/port.js'
import { MAX_NOTE_BYTES, cosignerKey, formatVkey } from '../../ledger/tlog/note.js'
import { decodeUtf8 } from '../../base/utf8.js'
import type { Witness } from '../../ledger/tlog/witness.js'
import { described } from './api.js'

export interface WitnessRouteOptions {
  node: NodePort
  witness: Witness
}

/**
 * WITNESS=true: the node witnesses its network's log (c2sp.org/tlog-witness): `POST
 * /add-checkpoint` cosigns a checkpoint its masters signed when it is consistent with the last
 * one this node cosigned; `GET /witness` names the witness and its verifier key.
 */
export async function witnessRoutes (app: FastifyInstance, { node, witness }: WitnessRouteOptions): Promise<void> {
  // tlog-witness clients send the request as text, whatever content type they name
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_NOTE_BYTES + 4096 }, (_req, body, done) => {
    try { done(null, decodeUtf8(body as Buffer, 'the request body', 'bad_command')) } catch (err) { done(err as Error) }
  })
  const name = witness.name

  app.get('/witness', { schema: described('This node\'s witness: its name and verifier key (cosignature/v1)') }, async () => ({
    name,
    public_key: node.signer.publicKey,
    vkey: formatVkey(cosignerKey(name, node.signer.publicKey))
  }))

  app.post('/add-checkpoint', { schema: described('c2sp.org/tlog-witness add-checkpoint: `old <size>`, consistency proof lines, an empty line, the checkpoint; answers the cosignature line') }, async (req, reply) => {
    const result = await witness.addCheckpoint(typeof req.body === 'string' ? req.body : '')
    return await reply.code(result.status).type(result.contentType).send(result.body)
  })
}
