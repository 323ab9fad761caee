import t from 'tap'
import { isLoopback } from '../src/services/rest/server.js'

// Without REST_TOKEN, only this host may write through a node's REST server (a write is
// signed with the node's own key): which client addresses count as this host.
t.test('loopback addresses, IPv4, IPv6 and IPv4-mapped', async t => {
  for (const address of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) t.ok(isLoopback(address), `${address} is this host`)
  for (const address of ['10.0.0.5', '192.168.1.20', '::ffff:10.0.0.5', 'fe80::1', '2001:db8::1', '', undefined]) t.notOk(isLoopback(address), `${String(address)} is another host`)
})
