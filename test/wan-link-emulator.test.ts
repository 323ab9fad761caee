import { connect, createServer, type Server, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { LinkEmulator } from '../bench/wan/link-emulator.js'
import type { LinkSettings } from '../bench/wan/topology.js'
import { waitFor } from './helpers/net.js'

// The WAN harness's link emulator, on loopback: the client dials from 127.0.0.2 (region 0),
// the emulator listens on 127.0.0.3 for a host whose own address is 127.0.0.1 (region 1).

const LINKS: LinkSettings = { localRttMs: 10, remoteRttMs: [200, 200], jitter: 0, stall: 0, stallMinMs: 200, rateKbit: 0, nat: false }

async function echoServer (t: Test): Promise<{ port: number, ends: () => number, peers: string[] }> {
  let ends = 0
  const peers: string[] = []
  const sockets = new Set<Socket>()
  const server: Server = createServer({ allowHalfOpen: true }, socket => {
    peers.push(String(socket.remoteAddress))
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    socket.on('end', () => { ends++; socket.end() })
    socket.pipe(socket, { end: false })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { for (const s of sockets) s.destroy(); await new Promise(resolve => server.close(resolve)) })
  return { port: (server.address() as { port: number }).port, ends: () => ends, peers }
}

async function setup (t: Test, links: Partial<LinkSettings> = {}): Promise<{ emulator: LinkEmulator, dial: (from?: string) => Promise<Socket>, echo: { ends: () => number, peers: string[] } }> {
  const echo = await echoServer(t)
  const emulator = new LinkEmulator({ ...LINKS, ...links }, 2)
  // two hosts of region 0: the second's public address is 127.0.0.5
  emulator.addHosts([{ region: 0, ip: '127.0.0.2', publicIp: '127.0.0.2' }, { region: 0, ip: '127.0.0.4', publicIp: '127.0.0.5' }])
  const port = await emulator.listen({ region: 1, ip: '127.0.0.1', publicIp: '127.0.0.3' }, echo.port, 0)
  t.teardown(async () => { await emulator.stop() })
  const dial = async (from = '127.0.0.2'): Promise<Socket> => await new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.3', port, localAddress: from }, () => { resolve(socket) })
    socket.once('error', reject)
    t.teardown(() => { socket.destroy() })
  })
  return { emulator, dial, echo }
}

/** Collects what `socket` receives. */
function received (socket: Socket): { text: () => string, events: string[] } {
  let text = ''
  const events: string[] = []
  socket.on('data', (chunk: Buffer) => { text += chunk.toString() })
  socket.on('end', () => events.push('end'))
  socket.on('error', (err: NodeJS.ErrnoException) => events.push(err.code ?? err.message))
  socket.on('close', () => events.push('close'))
  return { text: () => text, events }
}

t.test('a round trip between two regions takes their RTT', async t => {
  const { dial } = await setup(t)
  const socket = await dial()
  const got = received(socket)
  const start = performance.now()
  socket.write('ping')
  await waitFor('the echo', () => got.text() === 'ping' ? true : undefined, { everyMs: 5 })
  t.ok(performance.now() - start >= 195, `one round trip through a 200 ms link took ${(performance.now() - start).toFixed(0)} ms`)
})

t.test('chunks arrive complete and in order under heavy jitter', async t => {
  const { dial } = await setup(t, { remoteRttMs: [40, 40], jitter: 0.9 })
  const socket = await dial()
  const got = received(socket)
  let sent = ''
  for (let i = 0; i < 200; i++) {
    const line = `${i};`
    sent += line
    socket.write(line)
    if (i % 10 === 0) await new Promise(resolve => setTimeout(resolve, 2))
  }
  await waitFor('every chunk echoed', () => got.text().length === sent.length ? true : undefined, { everyMs: 10 })
  t.equal(got.text(), sent)
})

t.test('stalled chunks hold everything behind them and are counted', async t => {
  const { emulator, dial } = await setup(t, { remoteRttMs: [20, 20], stall: 1, stallMinMs: 100 })
  const socket = await dial()
  const got = received(socket)
  const start = performance.now()
  socket.write('a')
  socket.write('b')
  await waitFor('the echo', () => got.text() === 'ab' ? true : undefined, { everyMs: 5 })
  // each direction stalls at least once: 2 × (100 ms + 20 ms) on top of the 20 ms round trip
  t.ok(performance.now() - start >= 250, `stalled round trip ${(performance.now() - start).toFixed(0)} ms`)
  t.ok(emulator.stats().stalls >= 2)
})

t.test('a partition holds data and new connections; healing delivers them intact', async t => {
  const { emulator, dial } = await setup(t, { remoteRttMs: [20, 20] })
  const before = await dial()
  const got = received(before)
  emulator.partition([0])
  before.write('held')
  const during = await dial()
  const gotDuring = received(during)
  during.write('late')
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(got.text(), '', 'nothing crosses a partition')
  t.equal(gotDuring.text(), '', 'a connection made during it is not forwarded')
  t.equal(emulator.stats().held, 1, 'the new connection waits')
  emulator.heal()
  await waitFor('both echoes', () => got.text() === 'held' && gotDuring.text() === 'late' ? true : undefined, { everyMs: 10 })
  t.equal(emulator.stats().held, 0)
  t.same(got.events, [], 'the connection survived')
})

t.test('a partition within one side leaves that side alone', async t => {
  const { emulator, dial } = await setup(t, { remoteRttMs: [20, 20] })
  const socket = await dial()
  const got = received(socket)
  emulator.partition([0, 1])
  socket.write('x')
  await waitFor('the echo', () => got.text() === 'x' ? true : undefined, { everyMs: 5 })
  t.pass('regions on the same side still talk')
})

t.test('reset mode resets open and new connections; FIN travels with the delay', async t => {
  const { emulator, dial, echo } = await setup(t, { remoteRttMs: [20, 20] })
  const open = await dial()
  const got = received(open)
  emulator.partition([0], 'reset')
  await waitFor('the reset', () => got.events.includes('close') ? true : undefined, { everyMs: 10 })
  t.ok(got.events.includes('ECONNRESET'), `the open connection was reset (${got.events.join(', ')})`)
  emulator.heal()
  const later = await dial()
  const gotLater = received(later)
  later.end('bye')
  await waitFor('the echo and the FIN back', () => gotLater.text() === 'bye' && gotLater.events.includes('end') ? true : undefined, { everyMs: 10 })
  t.equal(echo.ends(), 1, 'the server saw the client\'s FIN')
  t.ok(emulator.stats().resets >= 1)
})

t.test('cut resets the connections between two regions', async t => {
  const { emulator, dial } = await setup(t, { remoteRttMs: [20, 20] })
  const socket = await dial()
  const got = received(socket)
  t.equal(emulator.cut(0, 1), 1)
  await waitFor('the reset', () => got.events.includes('close') ? true : undefined, { everyMs: 10 })
  t.equal(emulator.stats().connections, 0)
})

t.test('the host sees a peer\'s public address, or with nat its region\'s one address', async t => {
  for (const nat of [false, true]) {
    const { dial, echo } = await setup(t, { remoteRttMs: [10, 10], nat })
    for (const from of ['127.0.0.2', '127.0.0.4']) {
      const socket = await dial(from)
      const got = received(socket)
      socket.write('x')
      await waitFor('the echo', () => got.text() === 'x' ? true : undefined, { everyMs: 5 })
    }
    t.same(echo.peers, nat ? ['127.0.0.2', '127.0.0.2'] : ['127.0.0.2', '127.0.0.5'], nat ? 'behind one NAT' : 'each its own address')
  }
})
