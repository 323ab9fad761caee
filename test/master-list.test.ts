import t from 'tap'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { LedgerMeshError } from '../src/base/errors.js'
import { silentLogger } from '../src/base/logger.js'
import type { LedgerOp } from '../src/ledger/entry.js'
import { Ledger } from '../src/ledger/ledger.js'
import { LevelStore } from '../src/ledger/level-store.js'
import { parseHostPortList } from '../src/net/host-port.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { policyId } from '../src/policies/policy.js'
import { preparePolicy } from '../src/policies/prepare.js'
import type { Submitted } from '../src/protocols/insert/index.js'
import { MasterList, activeHint, retryDecision, tcpAddress } from '../src/services/master-list.js'
import { type InsertSubmitter, submitToMasters } from '../src/services/write-path.js'
import { hostPortOf, ledgerPeer, probe, startInsert } from './helpers/libp2p.js'
import { freePort } from './helpers/net.js'
import { tmpDir } from './helpers/tmp.js'

// MasterList: the order of masters, rotation, and withMaster's bounded retries. Attempts are
// counted, never timed.

const A = '10.0.0.1:32048'
const B = '10.0.0.2:32048'
const C = '10.0.0.3:32048'
const unreachable = (at: string): LedgerMeshError => new LedgerMeshError('master_unreachable', `cannot reach the master at ${at}`)

t.test('rotate moves to the next master and wraps; a second caller failing the same master does not skip one', async t => {
  const masters = new MasterList([A, B, C])
  t.equal(masters.current, A)
  t.equal(masters.rotate(A), B, 'A failed: B next')
  t.equal(masters.rotate(A), B, 'another caller saw A fail too: B stays (C is not skipped to)')
  t.equal(masters.rotate(B), C)
  t.equal(masters.rotate(C), A, 'after the last, the first again')
  t.equal(masters.rotate('10.9.9.9:1'), A, 'a failure of an address that is not current changes nothing')
})

t.test('withMaster: a dead master is passed over; the next one answers and stays current', async t => {
  const masters = new MasterList([A, B, C])
  const tried: string[] = []
  const answer = await masters.withMaster(async address => {
    tried.push(address)
    if (address !== B) throw unreachable(address)
    return 'ok'
  })
  t.equal(answer, 'ok')
  t.same(tried, [A, B])
  t.equal(masters.current, B, 'the next call starts at B')
})

t.test('withMaster: a refusal of the request is thrown at once, from the first master', async t => {
  for (const code of ['bad_policy', 'bad_signature', 'unauthorized', 'conflict', 'duplicate_id'] as const) {
    const masters = new MasterList([A, B])
    let calls = 0
    await t.rejects(masters.withMaster(async () => { calls++; throw new LedgerMeshError(code, 'no') }), { code })
    t.equal(calls, 1, `${code}: one attempt`)
    t.equal(masters.current, A, `${code}: no rotation`)
  }
})

t.test('withMaster: overloaded retries the same master; not_active and timeouts move on', async t => {
  const masters = new MasterList([A, B])
  const tried: string[] = []
  await masters.withMaster(async address => {
    tried.push(address)
    if (tried.length <= 2) throw new LedgerMeshError('overloaded', 'busy')
    return true
  })
  t.same(tried, [A, A, A], 'an overloaded master is up: it is asked again')
  t.equal(retryDecision(new LedgerMeshError('not_active', 'standby')), 'rotate')
  t.equal(retryDecision(new LedgerMeshError('timeout', 'slow')), 'rotate')
  t.equal(retryDecision(new Error('ECONNREFUSED')), 'rotate', 'a connection error no protocol mapped')
  t.equal(retryDecision(new LedgerMeshError('bad_command', 'no')), 'stop')
})

t.test('withMaster: not_active naming the active master goes there next, adding it to the list', async t => {
  const masters = new MasterList([A, B])
  const tried: string[] = []
  await masters.withMaster(async address => {
    tried.push(address)
    if (address === A) throw new LedgerMeshError('not_active', 'a standby', { active: C })
    if (address === B) throw unreachable(B)
    return true
  })
  t.same(tried, [A, C], 'B is not tried: the standby said C is active')
  t.same(masters.addresses, [A, B, C])
  t.equal(masters.current, C)
  // a hint that is not an address is ignored: plain rotation
  const other = new MasterList([A, B])
  const seen: string[] = []
  await other.withMaster(async address => { seen.push(address); if (address === A) throw new LedgerMeshError('not_active', 'x', { active: 'nonsense' }); return true })
  t.same(seen, [A, B])
})

t.test('withMaster: once the ledger trusts master keys, a not_active hint is followed only when it names a trusted key', async t => {
  const [trusted, stranger] = [randomBytes(32).toString('hex'), randomBytes(32).toString('hex')]
  // what the list reads of the node's ledger: the master keys it trusts (and no declared addresses)
  const ledger = { masterKey: trusted, masterKeys: [trusted], head: { seq: 0, hash: '' }, state: { policiesOfType: () => [] } } as unknown as Ledger
  const triedWith = async (details: Record<string, unknown>): Promise<string[]> => {
    const masters = new MasterList([A, B], () => ledger)
    const tried: string[] = []
    await masters.withMaster(async address => { tried.push(address); if (address === A) throw new LedgerMeshError('not_active', 'a standby', details); return true })
    return tried
  }
  t.same(await triedWith({ active: C, active_key: trusted }), [A, C], 'a hint naming a trusted master key is followed')
  t.same(await triedWith({ active: C, active_key: stranger }), [A, B], 'one naming another key is not: plain rotation')
  t.same(await triedWith({ active: C }), [A, B], 'nor one naming an address alone')
  t.equal(activeHint(new LedgerMeshError('not_active', 'x', { active: C })), C, 'before the ledger trusts any master (first contact), the address is all there is')
})

t.test('withMaster is bounded: by attempts, by its budget, by its signal; one known master means one attempt', async t => {
  const masters = new MasterList([A, B])
  let calls = 0
  await t.rejects(masters.withMaster(async address => { calls++; throw unreachable(address) }, { attempts: 5 }), { code: 'master_unreachable' })
  t.equal(calls, 5, 'attempts: 5')

  calls = 0
  await t.rejects(masters.withMaster(async address => { calls++; throw unreachable(address) }, { attempts: 1000, budgetMs: 0 }), { code: 'master_unreachable' })
  t.equal(calls, 1, 'a spent budget starts no new attempt')

  calls = 0
  const controller = new AbortController()
  await t.rejects(masters.withMaster(async address => { calls++; controller.abort(); throw unreachable(address) }, { attempts: 1000, signal: controller.signal }), { code: 'master_unreachable' })
  t.equal(calls, 1, 'an aborted signal stops the retries, with the last failure')

  calls = 0
  const single = new MasterList([A])
  await t.rejects(single.withMaster(async address => { calls++; throw unreachable(address) }), { code: 'master_unreachable' })
  t.equal(calls, 1, 'a single LEDGER_CONN behaves as before: one attempt, the caller decides (outbox, error)')

  calls = 0
  await t.rejects(masters.withMaster(async address => { calls++; throw unreachable(address) }), { code: 'master_unreachable' })
  t.ok(calls > 2 && calls <= 40, `by default several rounds of the list, bounded (${calls} attempts)`)
})

t.test('the list learns the masters the ledger declares: master_key addresses and master ip:port, each once', async t => {
  const dir = await tmpDir(t)
  const signer = new Ed25519Signer(randomBytes(32))
  const ledger = new Ledger({ store: new LevelStore({ path: join(dir, 'ledger') }), log: silentLogger(), masterSigner: signer })
  await ledger.open()
  t.teardown(async () => { await ledger.close() })
  const masters = new MasterList([A], () => ledger)
  t.same(masters.addresses, [A])
  const put = (body: object): LedgerOp => ({ op: 'put', policy: preparePolicy(body, signer) })
  await ledger.submit(put({ master: { name: 'm1', ip: '10.0.0.1', port: 32048 } }))
  t.same(masters.addresses, [A], 'the first master, already listed, is not repeated')
  await ledger.submit(put({ master_key: { key: new Ed25519Signer(randomBytes(32)).publicKey, name: 'm2', address: B } }))
  await ledger.submit(put({ master_key: { key: new Ed25519Signer(randomBytes(32)).publicKey, name: 'm3', address: 'not an address' } }))
  t.same(masters.addresses, [A, B], 'a master_key address is learned once appended; a malformed one is not')
  t.equal(masters.rotate(A), B, 'and rotation reaches it')
  const none = new MasterList([A], () => { throw new LedgerMeshError('store_unavailable', 'no ledger yet') })
  t.same(none.addresses, [A], 'no ledger connected yet: LEDGER_CONN only')
})

t.test('LEDGER_CONN-style lists: each element checked, the bad one named', async t => {
  t.same(parseHostPortList('10.0.0.1:1 , 10.0.0.2:2,10.0.0.1:1', 'bad_command'), ['10.0.0.1:1', '10.0.0.2:2'], 'spaces around commas; repeats dropped')
  t.throws(() => parseHostPortList('10.0.0.1:1,', 'bad_command'), { code: 'bad_command', message: /element 2 of 2 is empty/ })
  t.throws(() => parseHostPortList('10.0.0.1:1,10.0.0.2:70000', 'bad_config'), { code: 'bad_config', message: /element 2 of 2 is "10\.0\.0\.2:70000", not ip:port/ })
  t.throws(() => MasterList.parse('nowhere', 'master'), { code: 'bad_command', message: /master="nowhere": "nowhere" is not ip:port/ })
})

t.test('submitToMasters over real libp2p: a dead master first, then the live one; a retry after a lost answer is "already", never a second entry', async t => {
  const master = await ledgerPeer(t, { master: true })
  await startInsert(t, master)
  const client = await ledgerPeer(t)
  const insert = await startInsert(t, client)
  const dead = `127.0.0.1:${await freePort()}`
  const masters = new MasterList([dead, hostPortOf(master)])

  const first = probe('rotated')
  const answer = await submitToMasters(insert, masters, { op: 'put', policy: first })
  t.ok('accepted' in answer && answer.accepted.seq === 1, 'ordered by the live master')
  t.equal(masters.current, hostPortOf(master))

  // the answer of the first try is lost on its way back (the master committed it)
  const second = probe('answer-lost')
  const tries: string[] = []
  const lossy: InsertSubmitter = {
    submit: async (target, op): Promise<Submitted> => {
      tries.push(target.toString())
      const submitted = await insert.submit(target, op)
      if (tries.length === 1) throw new LedgerMeshError('master_unreachable', 'the master at ... did not answer: stream reset')
      return submitted
    }
  }
  const retried = await submitToMasters(lossy, masters, { op: 'put', policy: second }, { attempts: 4 })
  t.ok('already' in retried, 'the retry was refused duplicate_id: the first try had ordered it')
  const live = tcpAddress(hostPortOf(master)).toString()
  t.same(tries, [live, tcpAddress(dead).toString(), live], 'the lost answer, the dead master (rotation), the live one again: duplicate_id')
  t.equal([...master.ledger.state.policiesOfType('probe')].filter(p => policyId(p) === policyId(second)).length, 1, 'exactly one entry')
  t.equal(master.ledger.head.seq, 2)

  // a duplicate on a clean first try is the caller's error, not "already"
  await t.rejects(submitToMasters(insert, masters, { op: 'put', policy: first }), { code: 'duplicate_id' })
})
