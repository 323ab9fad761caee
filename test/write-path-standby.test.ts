import t from 'tap'
import { NodeMetrics } from '../src/services/metrics.js'
import type { ReplicaSync } from '../src/services/replica-sync.js'
import { WritePath } from '../src/services/write-path.js'
import { policyId } from '../src/policies/policy.js'
import { ledgerPeer, probe } from './helpers/libp2p.js'

// A trusted standby master that does not know the writer yet (before its first read of the
// writer lease, or during a takeover) waits for one instead of refusing the insert: its own
// start-up script's declaration failed `not_active` in a race of a few milliseconds (seen in
// CI: the second master of a failover benchmark exited at start).

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
    metrics: new NodeMetrics({ headSeq: () => master.ledger.head.seq, lag: () => undefined, sync: () => undefined }, { node: 'm', role: 'master' }),
    log: master.log
  })
  const policy = probe('standby-race')
  const pending = writePath.insert({ op: 'put', policy }, { local: false })
  await new Promise(resolve => setTimeout(resolve, 200))
  standingBy = false
  t.same(await pending, { id: policyId(policy), seq: 1, ledger: 'global' }, 'not refused: ordered here once this master writes')
})
