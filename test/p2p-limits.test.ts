import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { silentLogger } from '../src/base/logger.js'
import { libp2pPrivateKey } from '../src/node/identity.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { P2PHost } from '../src/services/p2p.js'
import { waitFor } from './helpers/net.js'

// A master takes a burst of connections from one address: edge nodes behind one NAT coming
// back together after a partition heals (the WAN harness). libp2p's defaults refuse a host's
// sixth inbound connection within a second and an eleventh handshake in flight.

async function host (t: Test, ip: string, allow: string[]): Promise<P2PHost> {
  const p2p = new P2PHost({ privateKey: libp2pPrivateKey(new Ed25519Signer(randomBytes(32))), ip, port: 0, allow, log: silentLogger() })
  await p2p.start()
  t.teardown(async () => { await p2p.stop() })
  return p2p
}

t.test('twenty peers from one address connect at once', async t => {
  // listening on 127.0.0.2 and exempting only that: the peers dial from 127.0.0.1, counted as one host
  const server = await host(t, '127.0.0.2', ['127.0.0.2'])
  const peers = await Promise.all(Array.from({ length: 20 }, async () => await host(t, '127.0.0.1', ['127.0.0.1'])))
  const address = server.libp2p.getMultiaddrs()[0]
  const results = await Promise.allSettled(peers.map(async peer => await peer.libp2p.dial(address, { signal: AbortSignal.timeout(15_000) })))
  const refused = results.filter(r => r.status === 'rejected').map(r => String((r as PromiseRejectedResult).reason))
  t.same(refused, [], 'none refused')
  // the server's side of each upgrade may finish a moment after the dialer's
  await waitFor('the server to hold all twenty', () => server.libp2p.getConnections().length === 20 ? true : undefined, { timeoutMs: 15_000 })
  t.equal(server.libp2p.getConnections().length, 20, 'the server holds all twenty')
})
