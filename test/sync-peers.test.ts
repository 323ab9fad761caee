import t from 'tap'
import { SyncPeers } from '../src/protocols/sync/peers.js'

// What a sync server remembers of its clients (GET /v1/network reads it on a master).

t.test('positions, open watches across pulls, and the bound', async t => {
  const peers = new SyncPeers(2)
  peers.note('a', 5)
  peers.watchStarted('a')
  peers.note('a', 3)
  t.match(peers.get('a'), { peer: 'a', seq: 3, watching: true }, 'the latest position; a pull does not end the watch')
  peers.watchStarted('a')
  peers.watchEnded('a')
  t.equal(peers.get('a')!.watching, true, 'one of two watches still open')
  peers.watchEnded('a')
  t.equal(peers.get('a')!.watching, false)
  peers.note('b', 1)
  peers.note('a', 6)
  peers.note('c', 2)
  t.same(peers.list().map(p => p.peer).sort(), ['a', 'c'], 'past the bound, the one heard from least recently goes')
})
