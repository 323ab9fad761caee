import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { multiaddr } from '@multiformats/multiaddr'
import { SnapshotFiles, chunkPath, latestPath, manifestPath } from '../src/ledger/snapshot/files.js'
import { encodeManifest } from '../src/ledger/snapshot/manifest.js'
import { SnapshotProtocol } from '../src/protocols/snapshot/index.js'
import { mirrorSnapshotSource, peerSnapshotSource } from '../src/services/snapshot-sources.js'
import { ledgerPeer } from './helpers/libp2p.js'
import { CLI, POLYFILL, ROOT, startNode } from './helpers/node-process.js'
import { httpRequest } from './helpers/http.js'
import { serveDirectory } from './helpers/static-server.js'
import { tmpDir } from './helpers/tmp.js'

/**
 * A node's snapshot files (src/ledger/snapshot/files.ts) reach others three ways, all with the
 * same bytes at the same paths: the libp2p protocol /ledgermesh/snapshot/1.0.0, the node's HTTP
 * routes, and a static mirror written by `ledgermesh export-tiles`. The files are written by
 * hand here (nothing checks them on the way: the bootstrapping side does).
 */

/** A snapshot of `chunkCount` chunks at `size` (manifest, random chunk bytes), published; answers what it wrote. */
async function writeSnapshot (files: SnapshotFiles, size: number, chunkCount: number): Promise<{ manifest: string, chunks: Buffer[] }> {
  const chunks = Array.from({ length: chunkCount }, (_v, i) => randomBytes(100 + i * 37))
  const manifest = encodeManifest({
    checkpoint: `example.org/log\n${size}\n${randomBytes(32).toString('base64')}\n\n— example.org/log AAAA\n`,
    headHash: randomBytes(32).toString('hex'),
    depth: Math.log2(chunkCount),
    chunks: chunks.map(() => ({ hash: randomBytes(32), count: 3 })),
    frontier: [randomBytes(32)]
  })
  for (const [index, chunk] of chunks.entries()) await files.writeChunk(size, index, chunk)
  await files.writeManifest(size, manifest)
  await files.publish(size)
  return { manifest, chunks }
}

t.test('the snapshot protocol serves a node\'s snapshot files, and refuses by name what it lacks', async t => {
  const server = await ledgerPeer(t)
  const client = await ledgerPeer(t)
  const files = new SnapshotFiles(await tmpDir(t, 'lm-snap-'))
  const serving = new SnapshotProtocol({ libp2p: server.libp2p, log: server.log })
  const fetching = new SnapshotProtocol({ libp2p: client.libp2p, log: client.log })
  t.teardown(async () => { await serving.stop(); await fetching.stop() })
  await serving.serve(files)

  await t.rejects(fetching.fetch(server.address, latestPath()), { code: 'not_found', message: 'this node has no snapshot yet' }, 'no snapshot yet')
  const { manifest, chunks } = await writeSnapshot(files, 1207, 2)
  t.equal((await fetching.fetch(server.address, latestPath())).toString(), '1207\n', 'latest')
  t.equal((await fetching.fetch(server.address, manifestPath(1207))).toString(), manifest, 'the manifest, byte for byte')
  for (const [index, chunk] of chunks.entries()) t.same(await fetching.fetch(server.address, chunkPath(1207, index)), chunk, `chunk ${index}, byte for byte`)
  const big = randomBytes(3 * 1024 * 1024)
  await files.writeChunk(1207, 5, big)
  t.ok((await fetching.fetch(server.libp2p.peerId, chunkPath(1207, 5))).equals(big), 'a 3 MiB chunk, by peer id')

  await t.rejects(fetching.fetch(server.address, chunkPath(1207, 2)), { code: 'not_found', message: 'this node has no chunk 2 of a snapshot at size 1207' }, 'a missing chunk')
  await t.rejects(fetching.fetch(server.address, manifestPath(99)), { code: 'not_found', message: 'this node has no snapshot at size 99' }, 'a missing snapshot')
  for (const path of ['snapshot/../identity.json', 'snapshot/01/manifest.json', 'tile/0/000', '']) {
    const refused = await fetching.fetch(server.address, path).then(() => undefined, (err: unknown) => err as { code: string, message: string })
    t.equal(refused?.code, 'bad_message', `${JSON.stringify(path)} refused`)
    t.equal(refused?.message.startsWith(`snapshot request: ${JSON.stringify(path)} is not a snapshot path`), true, `by name: ${refused?.message}`)
  }
  await t.rejects(fetching.fetch(server.address, `snapshot/${'1'.repeat(300)}`), { code: 'bad_message', message: /longer than 256 characters/ }, 'a junk path')

  const source = peerSnapshotSource(fetching, server.address, 'the master')
  t.equal(source.name, 'the master')
  t.same(await source.get(chunkPath(1207, 1)), chunks[1], 'a peer source reads the same bytes')
  // a node that serves nothing: the client names the peer, not a master
  await t.rejects(serving.fetch(client.address, latestPath()), { code: 'unreachable', message: /peer at .* snapshot/ }, 'a peer that does not serve the protocol')
})

t.test('a node serves its snapshots over HTTP and libp2p; export-tiles copies them to a static mirror', async t => {
  const node = await startNode(t, { type: 'master', name: 'snap-master' })
  const files = new SnapshotFiles(node.home)
  const get = async (path: string): Promise<{ status: number, type: string, cache: string, bytes: Buffer }> => {
    const res = await fetch(`${node.url}/${path}`, { signal: AbortSignal.timeout(10_000) })
    return { status: res.status, type: String(res.headers.get('content-type')), cache: String(res.headers.get('cache-control')), bytes: Buffer.from(await res.arrayBuffer()) }
  }

  const none = await get('snapshot/latest')
  t.equal(none.status, 404, 'no snapshot yet: 404')
  t.same(JSON.parse(none.bytes.toString()), { error: 'not_found', message: 'this node has no snapshot yet' })
  const mirrorDir = join(await tmpDir(t, 'lm-snap-mirror-'), 'mirror')
  const exportTo = (): ReturnType<typeof spawnSync> => spawnSync(process.execPath, ['--import', POLYFILL, CLI, 'export-tiles', mirrorDir, '--node', node.url], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
  const tilesOnly = exportTo()
  t.equal(tilesOnly.status, 0, String(tilesOnly.stderr))
  t.match(String(tilesOnly.stdout), /the node has no snapshot yet: tiles only/, 'export-tiles says it exported tiles only')

  const { manifest, chunks } = await writeSnapshot(files, 40, 4)
  const latest = await get('snapshot/latest')
  t.equal(latest.status, 200)
  t.equal(latest.bytes.toString(), '40\n')
  t.match(latest.type, /^text\/plain/)
  t.equal(latest.cache, 'no-cache', 'latest is not cached')
  const m = await get('snapshot/40/manifest.json')
  t.equal(m.bytes.toString(), manifest)
  t.match(m.type, /^application\/json/)
  t.equal(m.cache, 'public, max-age=31536000, immutable', 'the manifest is immutable')
  for (const [index, chunk] of chunks.entries()) {
    const c = await get(`snapshot/40/chunk/${index}`)
    t.ok(c.bytes.equals(chunk), `chunk ${index}, byte for byte`)
    t.equal(c.type, 'application/octet-stream')
    t.equal(c.cache, 'public, max-age=31536000, immutable')
  }
  const missing = await get('snapshot/40/chunk/4')
  t.equal(missing.status, 404)
  t.same(JSON.parse(missing.bytes.toString()), { error: 'not_found', message: 'this node has no chunk 4 of a snapshot at size 40' }, 'a missing chunk, named')
  t.same(JSON.parse((await get('snapshot/41/manifest.json')).bytes.toString()), { error: 'not_found', message: 'this node has no snapshot at size 41' }, 'a missing snapshot, named')
  t.equal((await get('snapshot/040/manifest.json')).status, 400, 'a size with a leading zero is not a snapshot path')
  t.equal((await httpRequest(`${node.url}/snapshot/40/chunk/x`)).status, 400, 'nor a chunk index that is not a number')

  // the node serves the same files over libp2p (started with its other protocols)
  const peer = await ledgerPeer(t)
  const protocol = new SnapshotProtocol({ libp2p: peer.libp2p, log: peer.log })
  const nodeAddress = multiaddr(`/ip4/127.0.0.1/tcp/${node.tcpPort}`)
  t.ok((await protocol.fetch(nodeAddress, chunkPath(40, 3))).equals(chunks[3]), 'chunk 3 over /ledgermesh/snapshot/1.0.0 from the node')

  const exported = exportTo()
  t.equal(exported.status, 0, String(exported.stderr))
  t.match(String(exported.stdout), /with the snapshot at size 40 \(4 chunks\)/)
  t.equal(await readFile(join(mirrorDir, 'snapshot', 'latest'), 'utf8'), '40\n')
  t.equal(await readFile(join(mirrorDir, 'snapshot', '40', 'manifest.json'), 'utf8'), manifest)
  for (const [index, chunk] of chunks.entries()) t.ok((await readFile(join(mirrorDir, 'snapshot', '40', 'chunk', String(index)))).equals(chunk), `the mirror's chunk ${index}`)

  const mirror = mirrorSnapshotSource(await serveDirectory(t, mirrorDir, 'snapshot/latest'))
  t.match(mirror.name, /^mirror http:\/\/127\.0\.0\.1:\d+\/$/)
  t.equal((await mirror.get(latestPath())).toString(), '40\n')
  t.equal((await mirror.get(manifestPath(40))).toString(), manifest)
  for (const [index, chunk] of chunks.entries()) t.ok((await mirror.get(chunkPath(40, index))).equals(chunk), `chunk ${index} from the static mirror`)
  await t.rejects(mirror.get(chunkPath(40, 4)), { code: 'not_found', message: /has no snapshot\/40\/chunk\/4$/ }, 'a 404 is not_found')
  await t.rejects(mirror.get('checkpoint'), { code: 'bad_message', message: /"checkpoint" is not a snapshot path/ })
  t.throws(() => mirrorSnapshotSource('ftp://example.org/'), { code: 'bad_config' })
})
