import t from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { loadOrCreateIdentity, libp2pPrivateKey } from '../src/node/identity.js'
import { signHead, headNote, type SignedHead } from '../src/ledger/head.js'
import { cosignerKey, formatVkey, parseNote, parseVkey, verifyNote } from '../src/ledger/tlog/note.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { silentLogger } from '../src/base/logger.js'
import { P2PHost } from '../src/services/p2p.js'
import { CheckpointProtocol } from '../src/protocols/checkpoint/index.js'
import { CLI, POLYFILL, ROOT, startNode, type NodeProcess } from './helpers/node-process.js'
import { getJson, insert } from './helpers/fleet.js'
import { httpRequest } from './helpers/http.js'
import { freePort, waitFor } from './helpers/net.js'

/**
 * Witnesses named by the network policy cosign the master's checkpoints (the master collects
 * a quorum and publishes the cosigned checkpoint; gossip carries it to every replica), and a
 * master made to sign a second history (the test signs with the master's own key: the fault)
 * is caught: by a witness, which never cosigns it, and by replicas that gossip, which report
 * fork_detected, stop following, and keep serving reads.
 */
const status = async (node: NodeProcess): Promise<any> => await getJson(node, '/v1/status')

t.test('witnesses cosign, gossip spreads the witnessed checkpoint, and a split view is caught', async t => {
  // the witnesses' keys and ports before the master starts: the master's WITNESSES names them
  const witnessSpecs = await Promise.all([1, 2, 3].map(async i => {
    const home = mkdtempSync(join(tmpdir(), `lm-witness${i}-`))
    t.teardown(() => rmSync(home, { recursive: true, force: true }))
    const { signer } = await loadOrCreateIdentity(home)
    return { name: `wit-${i}`, home, tcpPort: await freePort(), key: signer.publicKey }
  }))
  const master = await startNode(t, {
    type: 'master',
    name: 'wit-master',
    env: { WITNESSES: witnessSpecs.map(w => `${w.key}@127.0.0.1:${w.tcpPort}`).join(','), WITNESS_QUORUM: 2 }
  })
  const witnesses = await Promise.all(witnessSpecs.map(async w => await startNode(t, { type: 'member', name: w.name, home: w.home, tcpPort: w.tcpPort, env: { LEDGER_CONN: master.ledgerConn, BLOCKCHAIN_SYNC: '1 second', WITNESS: 'true' } })))
  const r1 = await startNode(t, { type: 'member', name: 'wit-r1', env: { LEDGER_CONN: master.ledgerConn, BLOCKCHAIN_SYNC: '1 second' } })
  // r2 syncs through r1 (a relay): r1 is one of its peers
  const r2 = await startNode(t, { type: 'member', name: 'wit-r2', env: { LEDGER_CONN: master.ledgerConn, BLOCKCHAIN_SYNC: '1 second', BLOCKCHAIN_SOURCE: r1.ledgerConn } })

  const network = (await getJson(master, '/v1/policies?type=network')).policies as Array<{ network: { witnesses?: unknown[], witness_quorum?: number } }>
  const policy = network.map(p => p.network).find(n => n.witnesses !== undefined)
  t.equal(policy?.witness_quorum, 2, 'the network policy names the witnesses and the quorum')
  t.equal(policy?.witnesses?.length, 3)

  for (let i = 0; i < 5; i++) await insert(master, { probe: { name: `p${i}` } })
  const head = (await getJson(master, '/v1/ledger/head')).signed as SignedHead
  const vkeys = await Promise.all(witnesses.map(async w => parseVkey((await getJson(w, '/witness')).vkey)))

  // the master publishes the cosigned checkpoint at /checkpoint once a quorum cosigned it
  const cosigned = await waitFor('a checkpoint of the head cosigned by a quorum', async () => {
    const text = (await httpRequest(`${master.url}/checkpoint`, { timeoutMs: 10_000 })).text
    const note = parseNote(text)
    if (!note.text.includes(`\n${head.seq}\n`)) return undefined
    try { return verifyNote(note, vkeys).length >= 2 ? text : undefined } catch { return undefined }
  }, { timeoutMs: 20_000 })
  const byWitnesses = verifyNote(parseNote(cosigned), vkeys)
  t.ok(byWitnesses.length >= 2 && byWitnesses.every(v => (v.timestamp ?? 0) > 0), 'timestamped cosignatures of at least two witnesses (checked with their vkeys)')
  // offline, with nothing but the keys: ledgermesh verify --witness
  const file = join(witnessSpecs[0].home, 'cosigned-checkpoint')
  writeFileSync(file, cosigned)
  const vkeyTexts = await Promise.all(witnesses.map(async w => (await getJson(w, '/witness')).vkey as string))
  const verify = (...args: string[]): { status: number | null, out: string } => {
    const run = spawnSync(process.execPath, ['--import', POLYFILL, CLI, 'verify', '--key', head.publicKey, '--checkpoint', file, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
    return { status: run.status, out: run.stdout + run.stderr }
  }
  const ok = verify('--witness', ...vkeyTexts, '--quorum', '2')
  t.equal(ok.status, 0, ok.out)
  t.match(ok.out, /cosigned by [23] witness\(es\)/)
  const stranger = formatVkey(cosignerKey('ledgermesh-witness/0000000000000000', new Ed25519Signer(randomBytes(32)).publicKey))
  const short = verify('--witness', stranger)
  t.equal(short.status, 1, 'a witness that did not cosign')
  t.match(short.out, /not verified: the checkpoint is cosigned by 0 of the witnesses given \(none\), 1 needed/)

  const witnessed = (await getJson(master, '/v1/ledger/head')).witnessed
  t.ok(witnessed.size >= head.seq && witnessed.cosigners.length >= 2, 'the master names the witnessed size and its cosigners')
  t.equal((await master.ok('get checkpoint')).text, cosigned.trimEnd(), '`get checkpoint` shows the cosigned checkpoint')

  // gossip brings the witnessed checkpoint to the replicas
  for (const replica of [r1, r2]) {
    await waitFor(`${replica.name} holds a witnessed checkpoint`, async () => ((await getJson(replica, '/v1/ledger/head')).witnessed?.size ?? 0) >= head.seq ? true : undefined, { timeoutMs: 20_000 })
  }
  t.pass('both replicas hold the witnessed checkpoint')

  // the fault: a checkpoint of another history, signed with the master's key
  await waitFor('r1 and r2 at the head', async () => (await getJson(r1, '/v1/ledger/head')).seq >= head.seq && (await getJson(r2, '/v1/ledger/head')).seq >= head.seq ? true : undefined)
  const { signer: masterKey } = await loadOrCreateIdentity(master.home)
  const current = (await getJson(master, '/v1/ledger/head')).signed as SignedHead
  const forged = headNote(signHead({ seq: current.seq, hash: current.hash, root: randomBytes(32).toString('hex') }, masterKey, current.origin))

  // gossip from a peer (the test's libp2p host): what does not verify, or agrees, is no fork
  const host = new P2PHost({ privateKey: libp2pPrivateKey(new Ed25519Signer(randomBytes(32))), ip: '127.0.0.1', port: 0, allow: ['127.0.0.1'], log: silentLogger() })
  await host.start()
  t.teardown(async () => { await host.stop() })
  const gossip = new CheckpointProtocol({ libp2p: host.libp2p, log: silentLogger() })
  const r1Status = await status(r1)
  const bogus = headNote(signHead({ seq: current.seq, hash: current.hash, root: randomBytes(32).toString('hex') }, new Ed25519Signer(randomBytes(32)), current.origin))
  await gossip.exchange(multiaddr(`/ip4/127.0.0.1/tcp/${r1.tcpPort}/p2p/${r1Status.peer_id}`), [bogus])
  t.equal((await status(r1)).fork_detected, undefined, 'a checkpoint no master key signed is no evidence of anything')
  const answer = await gossip.exchange(multiaddr(`/ip4/127.0.0.1/tcp/${r1.tcpPort}/p2p/${r1Status.peer_id}`), [headNote(current)])
  t.ok(answer.notes.length >= 1, 'r1 answers with its own checkpoint')
  t.equal((await status(r1)).fork_detected, undefined, 'the master\'s real checkpoint is no fork either')

  // a witness is shown it: refused, never cosigned, reported
  const w1 = witnesses[0]
  const w1Size = await waitFor('w1 cosigned the current size', async () => {
    const reply = await httpRequest(`${w1.url}/add-checkpoint`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: `old 0\n\n${forged}`, timeoutMs: 10_000 })
    return reply.status === 409 && Number(reply.text.trim()) === current.seq ? current.seq : undefined
  }, { timeoutMs: 20_000 })
  const refused = await httpRequest(`${w1.url}/add-checkpoint`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: `old ${w1Size}\n\n${forged}`, timeoutMs: 10_000 })
  t.equal(refused.status, 422, 'the witness does not cosign the second history')
  const w1Fork = (await status(w1)).fork_detected
  t.equal(w1Fork?.source, 'witness', 'the witness reports fork_detected')

  // the witness shows both checkpoints to its peers, and they to theirs: each checks the evidence itself
  for (const replica of [r1, r2]) {
    const report = await waitFor(`${replica.name} reports fork_detected`, async () => (await status(replica)).fork_detected, { timeoutMs: 20_000 })
    t.ok(report.checkpoints.includes(forged), `${replica.name}'s report holds the forged checkpoint as evidence`)
    t.not(report.source, 'witness', `${replica.name} learned it by gossip`)
    t.equal(report.checkpoints.length, 2)
    const health = await httpRequest(`${replica.url}/health`, { timeoutMs: 10_000 })
    t.equal(health.status, 503, `${replica.name}'s /health says unhealthy`)
    t.match(JSON.parse(health.text).reason, /fork detected/)
    t.match((await httpRequest(`${replica.url}/metrics`, { timeoutMs: 10_000 })).text, /^ledgermesh_fork_detected(\{[^}]*\})? 1$/m, 'the metric')
    t.match(replica.logs(), /fork detected/, 'the log')
  }

  // the replicas stop following: the master's next entries do not reach them; they still answer reads
  const before = (await getJson(r1, '/v1/ledger/head')).seq
  for (let i = 0; i < 3; i++) await insert(master, { probe: { name: `after${i}` } })
  t.ok((await getJson(master, '/v1/ledger/head')).seq >= before + 3, 'the master went on writing')
  // three sync intervals: a replica that followed would have them
  await new Promise(resolve => setTimeout(resolve, 3000))
  t.equal((await getJson(r1, '/v1/ledger/head')).seq, before, 'r1 applied nothing after the fork')
  const probes = (await getJson(r1, '/v1/policies?type=probe')).policies
  t.ok(probes.length >= 5, 'r1 still serves reads of what it had')

  // once resolved, `reset fork` clears the report (here on the master, whose own key signed the fault)
  const masterFork = await waitFor('the master was shown the evidence too', async () => (await status(master)).fork_detected)
  t.ok(masterFork.checkpoints.includes(forged))
  const reset = await master.ok('reset fork', { method: 'POST' })
  t.match(reset.text, /Fork report cleared/)
  const masterStatus = await status(master)
  await gossip.exchange(multiaddr(`/ip4/127.0.0.1/tcp/${master.tcpPort}/p2p/${masterStatus.peer_id}`), [forged])
  t.equal((await status(master)).fork_detected, undefined, 'cleared: the evidence it cleared, shown again (other nodes still hold it), raises nothing')
  t.equal((await httpRequest(`${master.url}/health`, { timeoutMs: 10_000 })).status, 200, 'healthy again')
  const another = headNote(signHead({ seq: current.seq, hash: current.hash, root: randomBytes(32).toString('hex') }, masterKey, current.origin))
  await gossip.exchange(multiaddr(`/ip4/127.0.0.1/tcp/${master.tcpPort}/p2p/${masterStatus.peer_id}`), [another])
  t.ok((await status(master)).fork_detected?.checkpoints.includes(another), 'a new second history is reported again')
})
