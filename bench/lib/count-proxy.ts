/**
 * A byte-counting TCP proxy on loopback, in its own process (so the bytes it copies cost
 * neither side's CPU). Both ledgermesh's libp2p connection and the AnyLog model's connections
 * go through one, so "bytes on the wire" means the same for both: every TCP payload byte,
 * both directions (libp2p: multistream-select, noise, yamux and the sync frames).
 *
 * Commands: `listen {targetPort}` → `{port}`; `bytes {port}` → `{up, down, connections}`.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { serveParent } from './child.js'

interface Counts { up: number, down: number, connections: number }
const proxies = new Map<number, { server: Server, sockets: Set<Socket>, counts: Counts }>()

async function listen (targetPort: number): Promise<number> {
  const counts: Counts = { up: 0, down: 0, connections: 0 }
  const sockets = new Set<Socket>()
  const server = createServer(client => {
    counts.connections++
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort })
    for (const socket of [client, upstream]) {
      // no Nagle delay here: the proxy must not change the timing of small frames
      socket.setNoDelay(true)
      sockets.add(socket)
      socket.on('close', () => { sockets.delete(socket); client.destroy(); upstream.destroy() })
      socket.on('error', () => { client.destroy(); upstream.destroy() })
    }
    client.on('data', chunk => { counts.up += chunk.byteLength })
    upstream.on('data', chunk => { counts.down += chunk.byteLength })
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  proxies.set(port, { server, sockets, counts })
  return port
}

serveParent({}, {
  listen: async ({ targetPort }) => ({ port: await listen(Number(targetPort)) }),
  bytes: ({ port }) => {
    const proxy = proxies.get(Number(port))
    if (proxy === undefined) throw new Error(`no proxy on port ${String(port)}`)
    return { ...proxy.counts }
  }
}, async () => {
  for (const { server, sockets } of proxies.values()) {
    for (const s of sockets) s.destroy()
    await new Promise(resolve => server.close(resolve))
  }
})
