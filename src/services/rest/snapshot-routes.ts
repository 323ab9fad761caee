import type { FastifyInstance, FastifyReply } from 'fastify'
import { LedgerMeshError } from '../../base/errors.js'
import { type SnapshotFiles, chunkPath, latestPath, manifestPath, parseSnapshotPath } from '../../ledger/snapshot/files.js'
import { described } from './api.js'

export interface SnapshotRouteOptions {
  /** the node's snapshots, under its home */
  snapshots: SnapshotFiles
}

/** a size or index as the layout writes it: decimal, no leading zeros (so one file has one URL) */
const SIZE = { type: 'string', pattern: '^(0|[1-9][0-9]{0,15})$' }
const INDEX = { type: 'string', pattern: '^(0|[1-9][0-9]{0,5})$' }
/** a snapshot's manifest and chunks never change once written: a new snapshot has another size */
const IMMUTABLE = 'public, max-age=31536000, immutable'

/**
 * The node's snapshots over HTTP, in the layout of src/ledger/snapshot/files.ts, the same
 * paths a static mirror (`ledgermesh export-tiles`) serves: `GET /snapshot/latest` (the size of
 * the newest, not cached), `GET /snapshot/<size>/manifest.json` and
 * `GET /snapshot/<size>/chunk/<index>` (immutable). A file the node lacks is a 404 naming it.
 */
export async function snapshotRoutes (app: FastifyInstance, { snapshots }: SnapshotRouteOptions): Promise<void> {
  const send = async (reply: FastifyReply, path: string, type: string, cache: string, missing: string): Promise<FastifyReply> => {
    // the schema's patterns admit sizes past 2^53 too: the layout's parser has the last word
    if (parseSnapshotPath(path) === undefined) throw new LedgerMeshError('not_found', `${path} is not a snapshot path`)
    const data = await snapshots.read(path)
    if (data === undefined) throw new LedgerMeshError('not_found', missing, { path })
    return await reply.type(type).header('cache-control', cache).send(data)
  }

  app.get('/snapshot/latest', { schema: described('The size of the newest snapshot of the live state this node holds (text/plain, decimal); 404 when it has none yet') }, async (_req, reply) => {
    return await send(reply, latestPath(), 'text/plain; charset=utf-8', 'no-cache', 'this node has no snapshot yet')
  })

  app.get('/snapshot/:size/manifest.json', {
    schema: described('The manifest of the snapshot at a tree size (application/json, immutable): its checkpoint, chunk hashes and the log\'s frontier', {
      params: { type: 'object', properties: { size: SIZE }, required: ['size'] }
    })
  }, async (req, reply) => {
    const { size } = req.params as { size: string }
    return await send(reply, manifestPath(Number(size)), 'application/json', IMMUTABLE, `this node has no snapshot at size ${size}`)
  })

  app.get('/snapshot/:size/chunk/:index', {
    schema: described('A chunk of the snapshot at a tree size: an entry bundle of the entries putting its live policies (application/octet-stream, immutable)', {
      params: { type: 'object', properties: { size: SIZE, index: INDEX }, required: ['size', 'index'] }
    })
  }, async (req, reply) => {
    const { size, index } = req.params as { size: string, index: string }
    return await send(reply, chunkPath(Number(size), Number(index)), 'application/octet-stream', IMMUTABLE, `this node has no chunk ${index} of a snapshot at size ${size}`)
  })
}
