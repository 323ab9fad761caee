import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadOrCreateIdentity } from '../src/node/identity.js'
import { parseCheckpoint, parseStateLine } from '../src/ledger/tlog/checkpoint.js'
import { parseNote } from '../src/ledger/tlog/note.js'
import { statePath } from '../src/ledger/state-tree/hashing.js'
import { decodeStateProof, verifyStateProof } from '../src/ledger/state-tree/proof.js'
import { entryBytes, entryLeafHash, entryText, parseEntryText } from '../src/ledger/entry.js'
import { headFromNote, headNote, signHead } from '../src/ledger/head.js'
import { chunkPath, manifestPath } from '../src/ledger/snapshot/files.js'
import { decodeManifest, encodeManifest } from '../src/ledger/snapshot/manifest.js'
import { rootFromChunks, subtreeRoot } from '../src/ledger/state-tree/snapshot-chunks.js'
import { SIG_COSIGNATURE_V1, formatNote, signNote } from '../src/ledger/tlog/note.js'
import { decodeBundle, encodeBundle } from '../src/ledger/tlog/tiles.js'
import { witnessName } from '../src/ledger/witnessed.js'
import { canonicalJson } from '../src/policies/canonical.js'
import type { Ed25519Signer } from '../src/policies/keys.js'
import { policyBody, policyType } from '../src/policies/policy.js'
import { CLI, POLYFILL, ROOT, createJoinToken, startNode, type NodeProcess } from './helpers/node-process.js'
import { getJson, insert } from './helpers/fleet.js'
import { freePort, waitFor } from './helpers/net.js'
import { serveDirectory } from './helpers/static-server.js'

/**
 * Instant bootstrap with real node processes, on a network with a witness: a full node takes
 * snapshots at witnessed checkpoints; a new node starts from one while the master is down
 * (served by that node, a worker) and from a static mirror (export-tiles on a plain web server), serves
 * reads at once, checks every author signature in the background, and syncs on once the
 * master is back.
 */
const POLICIES = 300
const status = async (node: NodeProcess): Promise<any> => await getJson(node, '/v1/status')
const head = async (node: NodeProcess): Promise<number> => (await getJson(node, '/v1/ledger/head')).seq as number
const probes = async (node: NodeProcess): Promise<number> => ((await getJson(node, '/v1/policies?type=probe')).policies as unknown[]).length

t.test('a new node starts from a witnessed snapshot served by a peer while the master is down, and from a static mirror', async t => {
  const witnessHome = mkdtempSync(join(tmpdir(), 'lm-snap-witness-'))
  t.teardown(() => rmSync(witnessHome, { recursive: true, force: true }))
  const witnessKey = (await loadOrCreateIdentity(witnessHome)).signer.publicKey
  const witnessPort = await freePort()
  const masterEnv = { WITNESSES: `${witnessKey}@127.0.0.1:${witnessPort}`, WITNESS_QUORUM: 1, SNAPSHOT_INTERVAL: '1 second' }
  let master = await startNode(t, { type: 'master', name: 'snap-master', env: masterEnv })
  await startNode(t, { type: 'member', name: 'snap-witness', home: witnessHome, tcpPort: witnessPort, env: { LEDGER_CONN: master.ledgerConn, BLOCKCHAIN_SYNC: '1 second', WITNESS: 'true' } })
  // BOOTSTRAP=full and RETAIN=all: it replays the whole log (it would start from the master's
  // snapshot else) and keeps it whole (it would compact to its witnessed snapshots else), so the
  // mirror exported from it holds every tile as well as its snapshot
  // a worker (of a slave that is not there: its profiles do not matter here) is the peer
  const server = await startNode(t, { type: 'worker', name: 'snap-server', env: { LEDGER_CONN: master.ledgerConn, SLAVE_NAME: 'snap-slave', SLOTS: 1, BLOCKCHAIN_SYNC: '1 second', SNAPSHOT_INTERVAL: '1 second', BOOTSTRAP: 'full', RETAIN: 'all' } })
  for (let i = 0; i < POLICIES; i++) await insert(master, { probe: { name: `p${i}` } })
  // tokens for the two new nodes while the master answers: each is a policy, so they are made
  // before the head the snapshots are awaited at (made after, the peer's latest witnessed
  // snapshot could be one past that head by the time the master goes down)
  const tokens = [await createJoinToken(master), await createJoinToken(master)]
  const atHead = (await getJson(master, '/v1/ledger/head')).seq as number

  const serving = await waitFor('the peer serving a witnessed snapshot at the master\'s head', async () => {
    const s = (await status(server)).snapshot?.serving
    return s?.size === atHead && s.witnessed === true ? s : undefined
  }, { timeoutMs: 30_000 })
  t.same(serving, { size: atHead, witnessed: true }, 'snapshots are taken where the witnesses vouched')

  // a static mirror of the peer (tiles and its snapshot), before the master goes down
  const mirrorDir = mkdtempSync(join(tmpdir(), 'lm-snap-mirror-'))
  t.teardown(() => rmSync(mirrorDir, { recursive: true, force: true }))
  const exported = spawnSync(process.execPath, ['--import', POLYFILL, CLI, 'export-tiles', mirrorDir, '--node', server.url], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
  t.equal(exported.status, 0, exported.stdout + exported.stderr)
  t.match(exported.stdout, new RegExp(`with the snapshot at size ${atHead}`))
  const mirrorUrl = await serveDirectory(t, mirrorDir, 'snapshot/latest')

  // the master goes down
  const masterHome = master.home
  const [masterTcp, masterRest] = [master.tcpPort, master.restPort]
  await master.kill()

  const fresh = await startNode(t, { type: 'member', name: 'snap-fresh', join: false, env: { LEDGER_CONN: `127.0.0.1:${masterTcp}`, SNAPSHOT_SOURCES: server.ledgerConn, JOIN_TOKEN: tokens[0]!, BLOCKCHAIN_SYNC: '1 second' } })
  const started = (await status(fresh)).snapshot
  t.equal(started?.bootstrap?.size, atHead, 'it started from the snapshot at the witnessed checkpoint')
  t.equal(started?.bootstrap?.witnessed, true)
  t.match(started?.bootstrap?.sources, [new RegExp(`peer ${server.ledgerConn}`)], 'served by the peer')
  t.equal((await getJson(fresh, '/v1/ledger/head')).seq, atHead, 'its head is the checkpoint\'s')
  t.equal(await probes(fresh), POLICIES, 'and it serves reads of every policy, with the master down')
  const verified = await waitFor('every author signature verified in the background', async () => {
    const v = (await status(fresh)).snapshot?.authors_verified
    return v?.done === true ? v : undefined
  })
  t.equal(verified.verified, verified.total)
  t.ok(verified.total >= POLICIES)
  const metrics = await (await fetch(`${fresh.url}/metrics`)).text()
  t.match(metrics, new RegExp(`ledgermesh_snapshot_authors_verified\\{[^}]*\\} ${verified.total}\\b`), 'the progress metric')

  // proofs of presence and absence from the node that holds no history, against its state line
  const someId = ((await getJson(fresh, '/v1/policies?type=probe')).policies as Array<{ probe: { id: string } }>)[0].probe.id
  for (const [id, present] of [[someId, true], ['0'.repeat(64), false]] as const) {
    const answer = await getJson(fresh, `/v1/proof/state?id=${id}`)
    const state = parseStateLine(parseCheckpoint(parseNote(answer.checkpoint).text).extensions)!
    t.equal(answer.present, present)
    const value = present ? Buffer.from(answer.value_hash, 'base64') : undefined
    t.ok(verifyStateProof(state.root, statePath(id), value, decodeStateProof(answer.proof)), `a proof of ${present ? 'presence' : 'absence'} verifies against the checkpoint's state root`)
  }

  const mirrored = await startNode(t, { type: 'member', name: 'snap-mirrored', join: false, env: { LEDGER_CONN: `127.0.0.1:${masterTcp}`, SNAPSHOT_SOURCES: mirrorUrl, JOIN_TOKEN: tokens[1]!, BLOCKCHAIN_SYNC: '1 second' } })
  const fromMirror = (await status(mirrored)).snapshot?.bootstrap
  t.equal(fromMirror?.size, atHead, 'a node starts from the static mirror too')
  t.match(fromMirror?.sources, [/^mirror http:\/\/127\.0\.0\.1/])
  t.equal(await probes(mirrored), POLICIES)

  // what a node refuses, shown with real processes (the master still down): a chunk altered on
  // the way, a witnessed state root the chunks do not lead to, and a policy whose author
  // signature the master (its key stolen, and the witness's) vouched for
  const masterSigner = (await loadOrCreateIdentity(masterHome)).signer
  const witnessSigner = (await loadOrCreateIdentity(witnessHome)).signer
  const variants = await snapshotVariants(t, mirrorDir, atHead, masterSigner, witnessSigner)
  const altered = await startNode(t, { type: 'member', name: 'snap-altered', join: false, env: { LEDGER_CONN: `127.0.0.1:${masterTcp}`, SNAPSHOT_SOURCES: `${variants.altered},${mirrorUrl}`, BLOCKCHAIN_SYNC: '1 second' } })
  t.equal((await status(altered)).snapshot?.bootstrap?.size, atHead, 'a chunk altered in transit: refused, and fetched from the next source')
  t.match(altered.logs(), /snapshot chunk refused; asking the next source/)
  t.equal(await probes(altered), POLICIES)
  const other = await startNode(t, { type: 'member', name: 'snap-other', join: false, env: { LEDGER_CONN: `127.0.0.1:${masterTcp}`, SNAPSHOT_SOURCES: variants.otherState, BLOCKCHAIN_SYNC: '1 second' } })
  t.equal((await status(other)).snapshot?.bootstrap, undefined, 'a witnessed state root the chunks do not lead to: refused')
  t.match(other.logs(), /snapshot manifest refused/)
  t.equal(await head(other), 0, 'nothing installed')
  const planted = await startNode(t, { type: 'member', name: 'snap-planted', join: false, env: { LEDGER_CONN: `127.0.0.1:${masterTcp}`, SNAPSHOT_SOURCES: variants.planted, BLOCKCHAIN_SYNC: '1 second' } })
  t.equal((await status(planted)).snapshot?.bootstrap?.size, atHead, 'a planted bad signature passes the state root check')
  const fork = await waitFor('the background check to raise the fork alarm', async () => (await status(planted)).fork_detected)
  t.match(fork.reason, /has an author signature that does not verify/)
  t.equal(fork.source, 'snapshot')
  t.equal((await fetch(`${planted.url}/health`)).status, 503, '/health says so')
  t.equal(await probes(planted), POLICIES, 'and it keeps serving reads')
  for (const node of [altered, other, planted]) await node.stop()

  // the master back: both sync the entries after the snapshot
  master = await startNode(t, { type: 'master', name: 'snap-master', home: masterHome, tcpPort: masterTcp, restPort: masterRest, env: masterEnv })
  for (let i = 0; i < 5; i++) await insert(master, { probe: { name: `after${i}` } })
  const later = (await getJson(master, '/v1/ledger/head')).seq as number
  for (const node of [fresh, mirrored]) {
    await waitFor(`${node.name} at the master's new head`, async () => (await getJson(node, '/v1/ledger/head')).seq >= later ? true : undefined, { timeoutMs: 30_000 })
    t.equal(await probes(node), POLICIES + 5, `${node.name} synced on from its snapshot`)
  }
})

/**
 * Three copies of a mirror's snapshot at `size`, each served by a static web server: one whose
 * chunk 0 was altered on the way; one whose checkpoint (signed by the master's key, cosigned by
 * the witness's) names a state root the chunks do not lead to; one with a policy whose author
 * signature was spoiled, under a state root recomputed over it and signed and cosigned so.
 */
async function snapshotVariants (t: Test, mirrorDir: string, size: number, master: Ed25519Signer, witness: Ed25519Signer): Promise<{ altered: string, otherState: string, planted: string }> {
  const manifest = decodeManifest(readFileSync(join(mirrorDir, manifestPath(size)), 'utf8'))
  const signed = headFromNote(manifest.checkpoint, parseCheckpoint(parseNote(manifest.checkpoint).text).origin, [master.publicKey])
  const note = (state: { size: number, root: string }): string => {
    const text = headNote(signHead({ seq: signed.seq, hash: manifest.headHash, root: signed.root, state }, master, signed.origin))
    const parsed = parseNote(text)
    return formatNote({ text: parsed.text, signatures: [...parsed.signatures, signNote(parsed.text, witnessName(witness.publicKey), witness, SIG_COSIGNATURE_V1)] })
  }
  const copy = async (name: string, change: (dir: string) => void): Promise<string> => {
    const dir = mkdtempSync(join(tmpdir(), `lm-snap-${name}-`))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    cpSync(mirrorDir, dir, { recursive: true })
    change(dir)
    return await serveDirectory(t, dir, 'snapshot/latest')
  }
  const altered = await copy('altered', dir => {
    const file = join(dir, chunkPath(size, 0))
    const bytes = readFileSync(file)
    const at = bytes.indexOf(Buffer.from('"name":"p')) + 9
    bytes[at] = bytes[at] === 0x31 ? 0x32 : 0x31
    writeFileSync(file, bytes)
  })
  const otherState = await copy('other-state', dir => {
    writeFileSync(join(dir, manifestPath(size)), encodeManifest({ ...manifest, checkpoint: note({ size: signed.state!.size, root: randomBytes(32).toString('hex') }) }))
  })
  const planted = await copy('planted', dir => {
    const file = join(dir, chunkPath(size, 0))
    const entries = decodeBundle(readFileSync(file)).map(text => parseEntryText(text)!)
    const victim = entries.findIndex(e => policyType(e.policy) === 'probe')
    const policy = structuredClone(entries[victim].policy) as Record<string, Record<string, unknown>>
    const body = Object.values(policy)[0]
    body.signature = (body.signature as string).replace(/^./, c => c === 'a' ? 'b' : 'a')
    const e = entries[victim]
    entries[victim] = parseEntryText(entryText(e.prevHash, e.seq, e.op, canonicalJson(policy)))!
    writeFileSync(file, encodeBundle(entries.map(entryBytes)))
    // every chunk's subtree hash again (the spoiled one changed), and the root they lead to
    const chunks = manifest.chunks.map((c, i) => {
      if (i !== 0) return c
      const leaves = entries.map(x => ({ path: statePath(String(policyBody(x.policy).id)), valueHash: entryLeafHash(x) })).sort((a, b) => Buffer.compare(a.path, b.path))
      return { hash: subtreeRoot(leaves, manifest.depth), count: c.count }
    })
    const root = rootFromChunks(chunks, manifest.depth).toString('hex')
    writeFileSync(join(dir, manifestPath(size)), encodeManifest({ ...manifest, chunks, checkpoint: note({ size: signed.state!.size, root }) }))
  })
  return { altered, otherState, planted }
}
