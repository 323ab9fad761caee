import type { FastifyInstance } from 'fastify'
import type { Logger } from '../../base/logger.js'
import type { NodePort } from '../../commands/port.js'
import { logOrigin } from '../../ledger/head.js'
import { MAX_NOTE_BYTES, cosignerKey, formatVkey } from '../../ledger/tlog/note.js'
import { decodeUtf8 } from '../../base/utf8.js'
import { Witness, type WitnessRecord } from '../../ledger/tlog/witness.js'
import { described } from './api.js'

export interface WitnessRouteOptions {
  node: NodePort
  log: Logger
}

/** Where a witness keeps the last checkpoint it cosigned for an origin: the store's meta. */
const recordKey = (origin: string): string => `witness:${origin}`

/**
 * WITNESS=true: the node witnesses its network's log (c2sp.org/tlog-witness): `POST
 * /add-checkpoint` cosigns a checkpoint its masters signed when it is consistent with the last
 * one this node cosigned; `GET /witness` names the witness and its verifier key.
 */
export async function witnessRoutes (app: FastifyInstance, { node, log }: WitnessRouteOptions): Promise<void> {
  // tlog-witness clients send the request as text, whatever content type they name
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: MAX_NOTE_BYTES + 4096 }, (_req, body, done) => {
    try { done(null, decodeUtf8(body as Buffer, 'the request body', 'bad_command')) } catch (err) { done(err as Error) }
  })
  const name = `ledgermesh-witness/${node.signer.publicKey.slice(0, 16)}`
  const witness = new Witness({
    name,
    signer: node.signer,
    // the log of this node's network, under the master keys its replica trusts
    logKeys: origin => {
      const root = node.hasLedger ? node.ledger.masterKey : undefined
      if (root === undefined || origin !== logOrigin(root)) return undefined
      return node.ledger.masterKeys.map(publicKey => cosignerKey(origin, publicKey))
    },
    load: async origin => {
      const stored = await node.ledger.store.getMeta(recordKey(origin))
      return stored === undefined ? undefined : JSON.parse(stored) as WitnessRecord
    },
    save: async (origin, record) => { await node.ledger.store.setMeta(recordKey(origin), JSON.stringify(record)) },
    onFork: evidence => { log.error({ fork_detected: evidence }, `fork detected: the log ${evidence.origin} signed a checkpoint no consistency proof links to the one this witness cosigned (${evidence.reason}); not cosigned`) }
  })

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
