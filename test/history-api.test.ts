import t from 'tap'
import { getJson, insert } from './helpers/fleet.js'
import { waitFor } from './helpers/net.js'
import { startNode } from './helpers/node-process.js'

// GET /v1/history: the console's charts read the node's last minutes from it, sampled every
// 5 s (counters the page turns into rates, and the lag).

interface Sample { t: number, head: number, entries_in: number, entries_out: number, lag: number }

t.test('samples of the head, the sync counters and the lag, in order', async t => {
  const master = await startNode(t, { type: 'master', name: 'hist-m' })
  const member = await startNode(t, { type: 'member', name: 'hist-r', env: { LEDGER_CONN: master.ledgerConn } })
  for (let i = 0; i < 10; i++) await insert(master, { probe: { name: `h-${i}` } })
  const head = (await getJson(master, '/v1/ledger/head') as { seq: number }).seq
  const history = await waitFor('a sample after the inserts', async () => {
    const h = await getJson(master, '/v1/history') as { every_ms: number, samples: Sample[] }
    return h.samples.at(-1)!.head >= head ? h : undefined
  }, { timeoutMs: 20_000, everyMs: 500 })
  t.equal(history.every_ms, 5000)
  t.ok(history.samples.length >= 2, `${history.samples.length} samples`)
  t.ok(history.samples.every((s, i) => i === 0 || (s.t > history.samples[i - 1].t && s.head >= history.samples[i - 1].head)), 'in time order, the head never going down')
  t.ok(history.samples[0].head < head, 'the inserts show as head growth between samples')
  t.ok(history.samples.at(-1)!.entries_out > 0, 'the master counts the entries it served')
  const replica = await getJson(member, '/v1/history') as { samples: Sample[] }
  t.ok(replica.samples.length >= 1 && replica.samples.every(s => s.lag >= 0), 'a replica samples too')
})
