import { createConnection, createServer, type Server, type Socket } from 'node:net'

/**
 * A loopback TCP proxy a test can cut: `partition()` drops every connection through it and
 * refuses new ones (a network partition between the two sides); `heal()` lets them through
 * again. `stall()` keeps every connection open but forwards nothing either way (a peer that
 * hangs: calls through it neither answer nor fail) until `unstall()`.
 */
export class TcpProxy {
  private server?: Server
  private readonly sockets = new Set<Socket>()
  private cut = false
  private stalled = false
  private readonly pairs = new Set<[Socket, Socket]>()
  port = 0
  /** TCP payload bytes copied so far, both directions (client to target, and back) */
  bytes = 0

  constructor (private readonly target: { host: string, port: number }) {}

  async start (port = 0): Promise<void> {
    this.server = createServer(client => {
      if (this.cut) { client.destroy(); return }
      const upstream = createConnection(this.target)
      for (const socket of [client, upstream]) {
        this.sockets.add(socket)
        socket.on('close', () => { this.sockets.delete(socket) })
        socket.on('error', () => { client.destroy(); upstream.destroy() })
      }
      client.on('data', (chunk: Buffer) => { this.bytes += chunk.byteLength })
      upstream.on('data', (chunk: Buffer) => { this.bytes += chunk.byteLength })
      const pair: [Socket, Socket] = [client, upstream]
      this.pairs.add(pair)
      client.on('close', () => { this.pairs.delete(pair) })
      if (this.stalled) this.hold(pair)
      else this.forward(pair)
    })
    await new Promise<void>(resolve => this.server!.listen(port, '127.0.0.1', resolve))
    this.port = (this.server!.address() as { port: number }).port
  }

  partition (): void {
    this.cut = true
    for (const socket of this.sockets) socket.destroy()
  }

  heal (): void { this.cut = false }

  stall (): void {
    this.stalled = true
    for (const pair of this.pairs) this.hold(pair)
  }

  unstall (): void {
    this.stalled = false
    for (const pair of this.pairs) this.forward(pair)
  }

  private forward ([client, upstream]: [Socket, Socket]): void {
    client.pipe(upstream)
    upstream.pipe(client)
  }

  private hold ([client, upstream]: [Socket, Socket]): void {
    client.unpipe(upstream)
    upstream.unpipe(client)
    client.pause()
    upstream.pause()
  }

  async stop (): Promise<void> {
    this.partition()
    await new Promise<void>(resolve => { if (this.server === undefined) resolve(); else this.server.close(() => { resolve() }) })
  }
}
