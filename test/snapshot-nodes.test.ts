import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadOrCreateIdentity } from '../src/node/identity.js'
import { parseCheckpoint, parseStateLine } from '../src/ledger/tlog/checkpoint.js'
import { parseNote } from '../src/ledger/tlog/note.js'
import { statePath } from '../src/ledger/state-tree/hashing.js'
import { decodeStateProof, verifyStateProof } from '../src/ledger/state-tree/proof.js'
import { CLI, POLYFILL, ROOT, createJoinToken, startNode, type NodeProcess } from './helpers/node-process.js'
import { getJson, insert } from './helpers/fleet.js'
import { freePort, waitFor } from './helpers/net.js'
import { serveDirectory } from './helpers/static-server.js'

/**
 * Instant bootstrap with real node processes, on a network with a witness: a full node takes
 * snapshots at witnessed checkpoints; a new node starts from one while the master is down
 * (served by that node) and from a static mirror (export-tiles on a plain web server), serves
 * reads at once, checks every author signature in the background, and syncs on once the
 * master is back.
 */
const POLICIES = 300
const status = async (node: NodeProcess): Promise<any> => await getJson(node, '/v1/status')
const probes = async (node: NodeProcess): Promise<number> => ((await getJson(node, '/v1/policies?type=probe')).policies as unknown[]).length

t.test('a new node starts from a witnessed snapshot served by a peer while the master is down, and from a static mirror', async t => {
  const witnessHome = mkdtempSync(join(tmpdir(), 'lm-snap-witness-'))
  t.teardown(() => rmSync(witnessHome, { recursive: true, force: true }))
  const witnessKey = (await loadOrCreateIdentity(witnessHome)).signer.publicKey
  const witnessPort = await freePort()
  const masterEnv = { WITNESSES: `${witnessKey}@127.0.0.1:${witnessPort}`, WITNESS_QUORUM: 1, SNAPSHOT_INTERVAL: '1 second' }
  let master = await startNode(t, { type: 'master', name: 'snap-master', env: masterEnv })
  await startNode(t, { type: 'member', name: 'snap-witness', home: witnessHome, tcpPort: witnessPort, env: { LEDGER_CONN: master.ledgerConn, BLOCKCHAIN_SYNC: '1 second', WITNESS: 'true' } })
  // BOOTSTRAP=full: it replays the whole log (it would start from the master's snapshot else),
  // so the mirror exported from it holds every tile as well as its snapshot
  const server = await startNode(t, { type: 'member', name: 'snap-server', env: { LEDGER_CONN: master.ledgerConn, BLOCKCHAIN_SYNC: '1 second', SNAPSHOT_INTERVAL: '1 second', BOOTSTRAP: 'full' } })
  for (let i = 0; i < POLICIES; i++) await insert(master, { probe: { name: `p${i}` } })
  const head = (await getJson(master, '/v1/ledger/head')).seq as number

  const serving = await waitFor('the peer serving a witnessed snapshot at the master\'s head', async () => {
    const s = (await status(server)).snapshot?.serving
    return s?.size === head && s.witnessed === true ? s : undefined
  }, { timeoutMs: 30_000 })
  t.same(serving, { size: head, witnessed: true }, 'snapshots are taken where the witnesses vouched')

  // a static mirror of the peer (tiles and its snapshot), before the master goes down
  const mirrorDir = mkdtempSync(join(tmpdir(), 'lm-snap-mirror-'))
  t.teardown(() => rmSync(mirrorDir, { recursive: true, force: true }))
  const exported = spawnSync(process.execPath, ['--import', POLYFILL, CLI, 'export-tiles', mirrorDir, '--node', server.url], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
  t.equal(exported.status, 0, exported.stdout + exported.stderr)
  t.match(exported.stdout, new RegExp(`with the snapshot at size ${head}`))
  const mirrorUrl = await serveDirectory(t, mirrorDir, 'snapshot/latest')

  // tokens for the two new nodes while the master answers, then the master goes down
  const tokens = [await createJoinToken(master), await createJoinToken(master)]
  const masterHome = master.home
  const [masterTcp, masterRest] = [master.tcpPort, master.restPort]
  await master.kill()

  const fresh = await startNode(t, { type: 'member', name: 'snap-fresh', join: false, env: { LEDGER_CONN: `127.0.0.1:${masterTcp}`, SNAPSHOT_SOURCES: server.ledgerConn, JOIN_TOKEN: tokens[0]!, BLOCKCHAIN_SYNC: '1 second' } })
  const started = (await status(fresh)).snapshot
  t.equal(started?.bootstrap?.size, head, 'it started from the snapshot at the witnessed checkpoint')
  t.equal(started?.bootstrap?.witnessed, true)
  t.match(started?.bootstrap?.sources, [new RegExp(`peer ${server.ledgerConn}`)], 'served by the peer')
  t.equal((await getJson(fresh, '/v1/ledger/head')).seq, head, 'its head is the checkpoint\'s')
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
  t.equal(fromMirror?.size, head, 'a node starts from the static mirror too')
  t.match(fromMirror?.sources, [/^mirror http:\/\/127\.0\.0\.1/])
  t.equal(await probes(mirrored), POLICIES)

  // the master back: both sync the entries after the snapshot
  master = await startNode(t, { type: 'master', name: 'snap-master', home: masterHome, tcpPort: masterTcp, restPort: masterRest, env: masterEnv })
  for (let i = 0; i < 5; i++) await insert(master, { probe: { name: `after${i}` } })
  const later = (await getJson(master, '/v1/ledger/head')).seq as number
  for (const node of [fresh, mirrored]) {
    await waitFor(`${node.name} at the master's new head`, async () => (await getJson(node, '/v1/ledger/head')).seq >= later ? true : undefined, { timeoutMs: 30_000 })
    t.equal(await probes(node), POLICIES + 5, `${node.name} synced on from its snapshot`)
  }
})
