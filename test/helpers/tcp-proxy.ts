import { createConnection, createServer, type Server, type Socket } from 'node:net'

/**
 * A loopback TCP proxy a test can cut: `partition()` drops every connection through it and
 * refuses new ones (a network partition between the two sides); `heal()` lets them through
 * again.
 */
export class TcpProxy {
  private server?: Server
  private readonly sockets = new Set<Socket>()
  private cut = false
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
      client.pipe(upstream)
      upstream.pipe(client)
    })
    await new Promise<void>(resolve => this.server!.listen(port, '127.0.0.1', resolve))
    this.port = (this.server!.address() as { port: number }).port
  }

  partition (): void {
    this.cut = true
    for (const socket of this.sockets) socket.destroy()
  }

  heal (): void { this.cut = false }

  async stop (): Promise<void> {
    this.partition()
    await new Promise<void>(resolve => { if (this.server === undefined) resolve(); else this.server.close(() => { resolve() }) })
  }
}
