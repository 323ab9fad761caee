import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadOrCreateIdentity } from '../src/node/identity.js'
import { parseCheckpoint, parseStateLine } from '../src/ledger/tlog/checkpoint.js'
import { parseNote } from '../src/ledger/tlog/note.js'
import { statePath } from '../src/ledger/state-tree/hashing.js'
import { decodeStateProof, verifyStateProof } from '../src/ledger/state-tree/proof.js'
import { startNode, type NodeProcess } from './helpers/node-process.js'
import { getJson, insert } from './helpers/fleet.js'
import { freePort, waitFor } from './helpers/net.js'

/**
 * Compaction with real node processes, on a network with a witness: a relay compacts its log
 * to each witnessed snapshot (RETAIN's default); a replica that syncs from it and was away
 * while it compacted past the replica's head is told `compacted`, starts again from the
 * relay's snapshot, and converges to the master's head.
 */
const status = async (node: NodeProcess): Promise<any> => await getJson(node, '/v1/status')
const head = async (node: NodeProcess): Promise<number> => (await getJson(node, '/v1/ledger/head')).seq as number
const probes = async (node: NodeProcess): Promise<number> => ((await getJson(node, '/v1/policies?type=probe')).policies as unknown[]).length

t.test('a replica behind its relay\'s compaction point is offered a snapshot and converges to the master\'s head', async t => {
  const witnessHome = mkdtempSync(join(tmpdir(), 'lm-compact-witness-'))
  t.teardown(() => rmSync(witnessHome, { recursive: true, force: true }))
  const witnessKey = (await loadOrCreateIdentity(witnessHome)).signer.publicKey
  const witnessPort = await freePort()
  const master = await startNode(t, { type: 'master', name: 'cmp-master', env: { WITNESSES: `${witnessKey}@127.0.0.1:${witnessPort}`, WITNESS_QUORUM: 1 } })
  await startNode(t, { type: 'member', name: 'cmp-witness', home: witnessHome, tcpPort: witnessPort, env: { LEDGER_CONN: master.ledgerConn, BLOCKCHAIN_SYNC: '1 second', WITNESS: 'true' } })
  const relay = await startNode(t, { type: 'member', name: 'cmp-relay', env: { LEDGER_CONN: master.ledgerConn, BLOCKCHAIN_SYNC: '1 second', SNAPSHOT_INTERVAL: '1 second', BOOTSTRAP: 'full' } })
  for (let i = 0; i < 20; i++) await insert(master, { probe: { name: `early${i}` } })

  const replicaEnv = { LEDGER_CONN: master.ledgerConn, BLOCKCHAIN_SOURCE: relay.ledgerConn, BLOCKCHAIN_SYNC: '1 second', BOOTSTRAP: 'full', SNAPSHOT_INTERVAL: '1 hour' }
  let replica = await startNode(t, { type: 'member', name: 'cmp-replica', env: replicaEnv })
  const early = await head(master)
  await waitFor('the replica at the master\'s head, through the relay', async () => await head(replica) >= early ? true : undefined, { timeoutMs: 30_000 })
  const away = await head(replica)
  const [home, tcpPort, restPort] = [replica.home, replica.tcpPort, replica.restPort]
  await replica.stop()

  // while it is away: more policies, some deleted, and the relay compacts past its head
  const ids: string[] = []
  for (let i = 0; i < 60; i++) ids.push((await insert(master, { probe: { name: `late${i}` } })).id)
  for (const id of ids.slice(0, 20)) await master.ok(`blockchain delete policy where id = ${id}`, { method: 'POST' })
  const later = await head(master)
  const compacted = await waitFor('the relay compacted to a witnessed snapshot past the replica\'s head', async () => {
    const start = (await status(relay)).snapshot?.log_start as number | undefined
    return start !== undefined && start >= later ? start : undefined
  }, { timeoutMs: 30_000 })
  t.ok(compacted > away, 'the relay keeps the log whole only after the replica\'s head')
  t.equal(await probes(relay), 60, 'and still serves every live policy')
  // proofs of presence and absence from the compacted relay, against its checkpoint's state line
  const liveId = ids[30]
  for (const [id, present] of [[liveId, true], [ids[0], false]] as const) {
    const answer = await getJson(relay, `/v1/proof/state?id=${id}`)
    const state = parseStateLine(parseCheckpoint(parseNote(answer.checkpoint).text).extensions)!
    t.equal(answer.present, present, present ? 'a live policy is present' : 'a deleted one is absent')
    t.ok(verifyStateProof(state.root, statePath(id), present ? Buffer.from(answer.value_hash, 'base64') : undefined, decodeStateProof(answer.proof)), `its proof of ${present ? 'presence' : 'absence'} verifies after compaction`)
  }

  replica = await startNode(t, { type: 'member', name: 'cmp-replica', home, tcpPort, restPort, env: replicaEnv })
  await waitFor('the replica started again from the relay\'s snapshot', async () => (await status(replica)).snapshot?.bootstrap !== undefined ? true : undefined, { timeoutMs: 30_000 })
  const bootstrap = (await status(replica)).snapshot.bootstrap
  t.ok(bootstrap.size >= compacted, 'from a snapshot at or past the relay\'s compaction point')
  t.match(bootstrap.sources[0], new RegExp(relay.ledgerConn.replace(/\./g, '\\.')), 'its source offered it')
  t.match(replica.logs(), /"code":"compacted"|sync source says compacted/, 'after being told its source compacted')
  await insert(master, { probe: { name: 'last' } })
  const final = await head(master)
  await waitFor('the replica at the master\'s head', async () => await head(replica) >= final ? true : undefined, { timeoutMs: 30_000 })
  t.equal(await probes(replica), await probes(master), 'it holds what the master holds')
  t.equal((await getJson(replica, '/v1/ledger/head')).signed.state.root, (await getJson(master, '/v1/ledger/head')).signed.state.root, 'the same state root')
})
