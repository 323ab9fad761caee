import t from 'tap'
import { randomBytes } from 'node:crypto'
import { loadOrCreateIdentity } from '../src/node/identity.js'
import { signHead, headNote, type SignedHead } from '../src/ledger/head.js'
import { parseNote, parseVkey, verifyNote } from '../src/ledger/tlog/note.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { startNode, type NodeProcess } from './helpers/node-process.js'
import { getJson, insert } from './helpers/fleet.js'
import { httpRequest } from './helpers/http.js'
import { waitFor } from './helpers/net.js'

/**
 * A node with WITNESS=true cosigns its network's checkpoints by c2sp.org/tlog-witness
 * (`POST /add-checkpoint`) only when a consistency proof links each to the last it cosigned.
 * A master made to sign a second history (the test signs checkpoints with the master's own
 * key: the fault) is refused and logged as a fork; the witness's record does not move.
 */
async function addCheckpoint (witness: NodeProcess, oldSize: number, proof: string[], note: string): Promise<{ status: number, text: string, type: string }> {
  const body = `old ${oldSize}\n${proof.map(p => `${p}\n`).join('')}\n${note}`
  const reply = await httpRequest(`${witness.url}/add-checkpoint`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body, timeoutMs: 10_000 })
  return { status: reply.status, text: reply.text, type: String(reply.headers['content-type']) }
}

const checkpointOf = async (node: NodeProcess): Promise<string> => (await httpRequest(`${node.url}/checkpoint`, { timeoutMs: 10_000 })).text

t.test('a witness cosigns consistent checkpoints only, and catches a master that signs two histories', async t => {
  const master = await startNode(t, { type: 'master', name: 'w-master' })
  const witness = await startNode(t, { type: 'member', name: 'w-witness', env: { LEDGER_CONN: master.ledgerConn, BLOCKCHAIN_SYNC: '1 second', WITNESS: 'true' } })
  for (let i = 0; i < 10; i++) await insert(master, { probe: { name: `a${i}` } })
  const first = (await getJson(master, '/v1/ledger/head')).signed as SignedHead
  await waitFor('the witness pinned the master key', async () => (await getJson(witness, '/v1/ledger/head')).seq >= first.seq ? true : undefined)
  const vkey = parseVkey((await getJson(witness, '/witness')).vkey)

  const a = await checkpointOf(master)
  const cosigned = await addCheckpoint(witness, 0, [], a)
  t.equal(cosigned.status, 200, cosigned.text)
  t.match(cosigned.text, /^\u2014 ledgermesh-witness\/[0-9a-f]{16} \S+\n$/)
  const [byWitness] = verifyNote(parseNote(a + cosigned.text), [vkey])
  t.ok(byWitness.timestamp !== undefined && byWitness.timestamp > 0, 'a timestamped cosignature of checkpoint A')

  for (let i = 0; i < 10; i++) await insert(master, { probe: { name: `b${i}` } })
  const b = await checkpointOf(master)
  const second = (await getJson(master, '/v1/ledger/head')).signed as SignedHead
  const proof = (await getJson(master, `/v1/proof/consistency?first=${first.seq}&second=${second.seq}`)).proof as string[]
  t.equal((await addCheckpoint(witness, first.seq, proof, b)).status, 200, 'B, with a proof from A')
  const stale = await addCheckpoint(witness, first.seq, proof, b)
  t.equal(stale.status, 409, 'an old size that is not the last cosigned one')
  t.equal(stale.text, `${second.seq}\n`)
  t.match(stale.type, /text\/x\.tlog\.size/)

  // the fault: checkpoints signed with the master's key for another history
  const { signer } = await loadOrCreateIdentity(master.home)
  const forged = (seq: number): string => headNote(signHead({ seq, hash: second.hash, root: randomBytes(32).toString('hex') }, signer, second.origin))
  const sameSize = await addCheckpoint(witness, second.seq, [], forged(second.seq))
  t.equal(sameSize.status, 422, 'another root at the size it cosigned')
  const larger = await addCheckpoint(witness, second.seq, proof.slice(0, 2), forged(second.seq + 5))
  t.equal(larger.status, 422, 'a larger tree no proof links')
  await waitFor('the fork in the witness\'s log', () => /fork detected: the log ledgermesh\/[0-9a-f]{16} signed a checkpoint/.test(witness.logs()) ? true : undefined)
  t.equal((await addCheckpoint(witness, second.seq, [], b)).status, 200, 'its record is still B: B again is cosigned')
  // B's log root with another state root, signed with the master's key: the witness is a full
  // replica and cosigns a state line only when it computed the same root at that size
  t.ok(second.state !== undefined, 'the master\'s checkpoints carry a state line')
  const wrongState = headNote(signHead({ seq: second.seq, hash: second.hash, root: second.root, state: { size: second.state!.size, root: randomBytes(32).toString('hex') } }, signer, second.origin))
  const refusedState = await addCheckpoint(witness, second.seq, [], wrongState)
  t.equal(refusedState.status, 422, 'a state line the witness did not compute is refused')
  t.match(refusedState.text, /the state line names root [0-9a-f]{12}… over \d+ policies at size \d+, but this witness computed/)

  const other = new Ed25519Signer(randomBytes(32))
  t.equal((await addCheckpoint(witness, second.seq, [], headNote(signHead({ seq: second.seq, hash: second.hash, root: second.root }, other, second.origin)))).status, 403, 'signed by a key the network does not trust')
  t.equal((await addCheckpoint(witness, 0, [], headNote(signHead({ seq: 1, hash: second.hash, root: second.root }, signer, 'another/log')))).status, 404, 'another log\'s origin')
  t.equal((await addCheckpoint(witness, second.seq + 1, [], b)).status, 400, 'an old size past the checkpoint')
  const malformed = await httpRequest(`${witness.url}/add-checkpoint`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'no blank line', timeoutMs: 10_000 })
  t.equal(malformed.status, 400)
  t.equal((await httpRequest(`${master.url}/add-checkpoint`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: `old 0\n\n${b}`, timeoutMs: 10_000 })).status, 404, 'a node without WITNESS=true serves no witness')
})
