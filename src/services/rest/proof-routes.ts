import type { FastifyInstance, FastifyReply } from 'fastify'
import type { CommandOutput } from '../../commands/output.js'
import type { Executor } from '../../commands/executor.js'
import { parseScript } from '../../commands/parser.js'
import { Variables } from '../../commands/variables.js'
import type { NodePort } from '../../commands/port.js'
import { tileBytes } from '../../ledger/proofs.js'
import { described } from './api.js'

export interface ProofRouteOptions {
  executor: Executor
  /** the node, for its tiles (static bytes, not a command's answer) */
  node: NodePort
}

const SIZE = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER }

/**
 * The verifiable log over HTTP: the checkpoint as C2SP serves it (`GET /checkpoint`, a signed
 * note as text), its tiles (`GET /tile/...`, c2sp.org/tlog-tiles) and proofs against it. Each runs its command (`get checkpoint`, `blockchain
 * prove ...`) through the one executor, from values the schema validated.
 */
export async function proofRoutes (app: FastifyInstance, { executor, node }: ProofRouteOptions): Promise<void> {
  const output = async (command: string): Promise<CommandOutput | undefined> => {
    const [result] = await executor.runStatements(parseScript(command), { vars: new Variables(undefined, undefined, { hideSecrets: true }), via: 'rest', executor })
    return result?.output
  }
  const run = async (command: string): Promise<unknown> => (await output(command))?.value
  // a proof is sent as the command's JSON text: serializing its value again was a second copy
  // of a 2 kB answer for every request
  const proof = async (reply: FastifyReply, command: string): Promise<FastifyReply> =>
    await reply.type('application/json; charset=utf-8').send((await output(command))?.text ?? 'null')

  app.get('/checkpoint', { schema: described('The signed checkpoint this node holds (c2sp.org/tlog-checkpoint, a signed note; text/plain)') }, async (_req, reply) => {
    const { checkpoint } = await run('get checkpoint') as { checkpoint: string }
    return await reply.type('text/plain; charset=utf-8').header('cache-control', 'no-cache').send(checkpoint)
  })

  // tiles are immutable: a full one never changes, a partial one is the tile of one tree size
  app.get('/tile/*', { schema: described('A C2SP log tile (tile/<L>/<N>[.p/<W>]) or entry bundle (tile/entries/<N>[.p/<W>]) of the tree at this node\'s checkpoint (application/octet-stream)') }, async (req, reply) => {
    const bytes = await tileBytes(node.ledger, (req.params as { '*': string })['*'])
    return await reply.type('application/octet-stream').header('cache-control', 'public, max-age=31536000, immutable').send(bytes)
  })

  app.get('/v1/proof/inclusion', {
    schema: described('An RFC 6962 inclusion proof of a live policy (`id`) or an entry (`seq`) in the tree of `size` entries (the checkpoint\'s by default), with the entry\'s bytes and the checkpoint', {
      querystring: {
        type: 'object',
        properties: { id: { type: 'string', pattern: '^[0-9a-fA-F]{64}$' }, seq: SIZE, size: SIZE },
        oneOf: [{ required: ['id'] }, { required: ['seq'] }],
        additionalProperties: false
      }
    })
  }, async (req, reply) => {
    const { id, seq, size } = req.query as { id?: string, seq?: number, size?: number }
    return await proof(reply, `blockchain prove where ${id !== undefined ? `id = ${id}` : `seq = ${seq!}`}${size !== undefined ? ` and size = ${size}` : ''}`)
  })

  app.get('/v1/proof/state', {
    schema: described('A sparse Merkle proof that a policy id is live (with its entry) or absent, against the state line of this node\'s signed checkpoint', {
      querystring: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 256 } }, required: ['id'], additionalProperties: false }
    })
  }, async (req, reply) => {
    const { id } = req.query as { id: string }
    return await proof(reply, `blockchain prove state where id = ${JSON.stringify(id)}`)
  })

  app.get('/v1/proof/consistency', {
    schema: described('An RFC 6962 consistency proof from the tree of `first` entries to the tree of `second` (the checkpoint\'s by default)', {
      querystring: {
        type: 'object',
        properties: { first: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER }, second: SIZE },
        required: ['first'],
        additionalProperties: false
      }
    })
  }, async (req, reply) => {
    const { first, second } = req.query as { first: number, second?: number }
    return await proof(reply, `blockchain prove consistency where first = ${first}${second !== undefined ? ` and second = ${second}` : ''}`)
  })
}
