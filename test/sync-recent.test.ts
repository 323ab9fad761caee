import t from 'tap'
import { randomBytes } from 'node:crypto'
import { GENESIS_HASH, chainEntries } from '../src/ledger/entry.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { preparePolicy } from '../src/policies/prepare.js'
import { RECENT_ENTRIES, RecentEntries } from '../src/protocols/sync/recent.js'
import { encodeEntry } from '../src/protocols/sync/codec.js'

// The entries a node appended last, kept encoded for its watch streams: only while they are
// still its chain's, else the streams read the store as before.

const author = new Ed25519Signer(randomBytes(32))
const chain = (count: number, from = { seq: 0, hash: GENESIS_HASH }, tag = 'a') =>
  chainEntries(from, Array.from({ length: count }, (_, i) => ({ op: 'put' as const, policy: preparePolicy({ probe: { name: `${tag}-${from.seq + i}` } }, author) })))

t.test('follows contiguous appends, encoded as a pull would encode them', async t => {
  const recent = new RecentEntries()
  const first = chain(3)
  recent.note(first)
  const next = chain(2, { seq: 3, hash: first[2].hash })
  recent.note(next)
  for (const entry of [...first, ...next]) {
    const kept = recent.get(entry.seq, 5)
    t.equal(kept?.entry, entry, `entry ${entry.seq} kept`)
    t.same(kept?.encoded, encodeEntry(entry), `entry ${entry.seq} encoded as the store's copy would be`)
  }
  t.equal(recent.get(6, 10), undefined, 'nothing past what was appended')
})

t.test('starts anew when a run does not follow (a rewound log, a replaced state), and never answers past the head', async t => {
  const recent = new RecentEntries()
  const first = chain(4)
  recent.note(first)
  t.equal(recent.get(4, 2), undefined, 'past the head now (rewound, not appended since): left to the store')
  // rewound to seq 2, then another entry 3
  const other = chain(1, { seq: 2, hash: first[1].hash }, 'b')
  recent.note(other)
  t.equal(recent.get(3, 3)?.entry, other[0], 'the new entry 3')
  t.equal(recent.get(2, 3), undefined, 'what came before the gap is forgotten')
  t.equal(recent.get(4, 4), undefined, 'the old entry 4 is gone')
  recent.note([])
  t.equal(recent.get(3, 3), undefined, 'a replaced state empties it')
})

t.test('keeps only the last RECENT_ENTRIES', async t => {
  const recent = new RecentEntries()
  const entries = chain(RECENT_ENTRIES + 10)
  recent.note(entries.slice(0, 100))
  recent.note(entries.slice(100))
  const head = entries.length
  t.equal(recent.get(10, head), undefined, 'the oldest dropped')
  t.equal(recent.get(11, head)?.entry, entries[10], 'the first kept')
  t.equal(recent.get(head, head)?.entry, entries[head - 1], 'the last kept')
})
