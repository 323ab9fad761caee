import t from 'tap'
import { NodeMetrics } from '../src/services/metrics.js'
import type { ReplicaSync } from '../src/services/replica-sync.js'
import { WritePath } from '../src/services/write-path.js'
import { policyId } from '../src/policies/policy.js'
import { hostPortOf, ledgerPeer, probe, startInsert } from './helpers/libp2p.js'
import { LedgerMeshError } from '../src/base/errors.js'
import type { Ledger } from '../src/ledger/ledger.js'

// A trusted standby master that does not know the writer yet (before its first read of the
// writer lease, or during a takeover) waits for one instead of refusing the insert: its own
// start-up script's declaration failed `not_active` in a race of a few milliseconds (seen in
// CI: the second master of a failover benchmark exited at start).

const metricsOf = (ledger: Ledger) => new NodeMetrics({ headSeq: () => ledger.head.seq, lag: () => undefined, sync: () => undefined }, { node: 'm', role: 'master' })

t.test('an insert on a standby that knows no writer yet waits, and is ordered once this master writes', async t => {
  const master = await ledgerPeer(t, { master: true })
  const sync = { keepsReplica: false } as unknown as ReplicaSync
  let standingBy = true
  const writePath = new WritePath({
    ledger: () => master.ledger,
    signer: () => master.signer,
    sync: () => sync,
    insert: () => undefined,
    masterConns: ['127.0.0.1:1'],
    // no writer known, then this master becomes it
    standby: () => standingBy ? { address: null, trusted: true, defer: () => { t.fail('a trusted master defers nothing') } } : undefined,
    metrics: metricsOf(master.ledger),
    log: master.log
  })
  const policy = probe('standby-race')
  const pending = writePath.insert({ op: 'put', policy }, { local: false })
  await new Promise(resolve => setTimeout(resolve, 200))
  standingBy = false
  t.same(await pending, { id: policyId(policy), seq: 1, ledger: 'global' }, 'not refused: ordered here once this master writes')
})

/**
 * The master's ledger, except that its next commit is refused as the database's fence refuses
 * it when the writer lease moved just before (nothing written, `not_active`); `onFence` runs then.
 */
function fencedOnce (ledger: Ledger, onFence: () => void): Ledger {
  let fenced = false
  return new Proxy(ledger, {
    get (target, prop) {
      if (prop === 'submit' && !fenced) {
        return async () => {
          fenced = true
          onFence()
          throw new LedgerMeshError('not_active', 'this master no longer holds the writer lease of the test database (its epoch was 1): another master writes now', { epoch: 1 })
        }
      }
      const value = Reflect.get(target, prop, target) as unknown
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}


t.test('a commit the fence refuses (the lease moved just before) goes to the master that writes now', async t => {
  const active = await ledgerPeer(t, { master: true })
  await startInsert(t, active)
  const old = await ledgerPeer(t, { master: true })
  const client = await startInsert(t, old)
  let standby: { address: string | null, trusted: boolean, defer: () => void } | undefined
  const writePath = new WritePath({
    ledger: () => fencedOnce(old.ledger, () => {
      // the role notices a moment later that another master holds the lease
      setTimeout(() => { standby = { address: hostPortOf(active), trusted: true, defer: () => { t.fail('a trusted master defers nothing') } } }, 100)
    }),
    signer: () => old.signer,
    sync: () => ({ keepsReplica: false }) as unknown as ReplicaSync,
    insert: () => client,
    masterConns: [hostPortOf(active)],
    standby: () => standby,
    metrics: metricsOf(old.ledger),
    log: old.log
  })
  const policy = probe('fenced-then-forwarded')
  const result = await writePath.insert({ op: 'put', policy }, { local: false })
  t.same(result, { id: policyId(policy), seq: 1, ledger: 'global' }, 'not refused: ordered by the active master')
  t.ok(active.ledger.state.has(policyId(policy)), 'the active master holds it')
  t.equal(old.ledger.head.seq, 0, 'the old writer wrote nothing')
})

t.test('a commit the fence refused is ordered here when this master holds the lease again', async t => {
  const master = await ledgerPeer(t, { master: true })
  const writePath = new WritePath({
    ledger: () => fencedOnce(master.ledger, () => {}),
    signer: () => master.signer,
    sync: () => ({ keepsReplica: false }) as unknown as ReplicaSync,
    insert: () => undefined,
    masterConns: ['127.0.0.1:1'],
    standby: () => undefined,
    metrics: metricsOf(master.ledger),
    log: master.log
  })
  const policy = probe('fenced-then-here')
  t.same(await writePath.insert({ op: 'put', policy }, { local: false }), { id: policyId(policy), seq: 1, ledger: 'global' })
})
