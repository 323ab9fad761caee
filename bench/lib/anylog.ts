import { createHash } from 'node:crypto'
import { readFileSync, renameSync, writeFileSync, appendFileSync, existsSync } from 'node:fs'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'

/**
 * The baseline: a model of AnyLog's blockchain sync as its open edition, EdgeLake, does it (its
 * behaviour observed and its code read), over a real loopback TCP connection.
 *
 * - The master keeps the ledger as one file of JSON lines, one policy per line (blockchain.json).
 * - Every sync interval a node connects and sends `get_blockchain <md5 of its own file>`.
 * - The master md5s its whole file on every request; when the digests match it answers
 *   `same`, else it sends the whole file.
 * - The node writes what it received to blockchain.new, keeps the previous file as
 *   blockchain.old, swaps the new one in and reloads its in-memory metadata (every line parsed).
 *
 * The model is generous to AnyLog: EdgeLake's master also SELECTs the whole table and rewrites
 * the file on every request, and with `dest=file` (its default) the node always sends hash "0",
 * so the file comes back on every round even when nothing changed. Here the master's file is
 * kept current on insert (no per-request SELECT), and the node sends its real digest.
 */

const md5 = (data: Uint8Array | string): string => createHash('md5').update(data).digest('hex')

/** A policy as a line of blockchain.json. */
export const ledgerLine = (policy: object): string => JSON.stringify(policy) + '\n'

/** The master's side: the file and the TCP server that answers digests. */
export class AnyLogMaster {
  private server?: Server
  private readonly sockets = new Set<Socket>()
  port = 0

  constructor (readonly file: string) {}

  writeAll (policies: Iterable<object>): number {
    const lines: string[] = []
    for (const p of policies) lines.push(ledgerLine(p))
    const text = lines.join('')
    writeFileSync(this.file, text)
    return Buffer.byteLength(text)
  }

  append (policy: object): void { appendFileSync(this.file, ledgerLine(policy)) }

  async start (): Promise<void> {
    this.server = createServer(socket => {
      this.sockets.add(socket)
      socket.on('close', () => { this.sockets.delete(socket) })
      socket.on('error', () => { socket.destroy() })
      let request = ''
      const onData = (chunk: Buffer): void => {
        request += chunk.toString('latin1')
        const end = request.indexOf('\n')
        if (end < 0) return
        socket.off('data', onData)
        const [verb, digest] = request.slice(0, end).split(' ')
        if (verb !== 'get_blockchain') { socket.end('error unknown request\n'); return }
        // the master reads and hashes its whole file on every request
        const file = readFileSync(this.file)
        if (md5(file) === digest) {
          socket.end('same\n')
        } else {
          socket.write(`file ${file.byteLength}\n`)
          socket.end(file)
        }
      }
      socket.on('data', onData)
    })
    await new Promise<void>(resolve => this.server!.listen(0, '127.0.0.1', resolve))
    this.port = (this.server!.address() as { port: number }).port
  }

  async stop (): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise<void>(resolve => { if (this.server === undefined) resolve(); else this.server.close(() => { resolve() }) })
  }
}

export interface AnyLogRound {
  /** whether the master sent the file */
  changed: boolean
  /** TCP payload bytes both ways, as this node's socket counted them */
  bytes: number
  /** policies loaded after the round */
  policies: number
}

/** A node's side: its file, its in-memory metadata, and one sync round at a time. */
export class AnyLogNode {
  private digest = md5('')
  /** the in-memory metadata AnyLog reloads from the file: policy id → policy */
  readonly policies = new Map<string, unknown>()

  constructor (readonly dir: string) {}

  get file (): string { return join(this.dir, 'blockchain.json') }

  async syncRound (port: number, host = '127.0.0.1'): Promise<AnyLogRound> {
    const socket = createConnection({ port, host })
    const chunks: Buffer[] = []
    await new Promise<void>((resolve, reject) => {
      socket.on('connect', () => { socket.write(`get_blockchain ${this.digest}\n`) })
      socket.on('data', chunk => { chunks.push(chunk) })
      socket.on('end', () => { resolve() })
      socket.on('error', reject)
    })
    const bytes = socket.bytesRead + socket.bytesWritten
    socket.destroy()
    const reply = Buffer.concat(chunks)
    const headerEnd = reply.indexOf(10)
    const header = reply.subarray(0, headerEnd).toString('latin1')
    if (header === 'same') return { changed: false, bytes, policies: this.policies.size }
    const match = /^file (\d+)$/.exec(header)
    if (match === null) throw new Error(`AnyLog model: bad reply ${JSON.stringify(header.slice(0, 80))}`)
    const body = reply.subarray(headerEnd + 1)
    if (body.byteLength !== Number(match[1])) throw new Error(`AnyLog model: got ${body.byteLength} of ${match[1]} bytes`)
    // swap the file in (the previous one kept as .old), then reload the metadata from it
    const fresh = join(this.dir, 'blockchain.new')
    writeFileSync(fresh, body)
    if (existsSync(this.file)) renameSync(this.file, join(this.dir, 'blockchain.old'))
    renameSync(fresh, this.file)
    this.digest = md5(body)
    this.policies.clear()
    for (const line of body.toString('utf8').split('\n')) {
      if (line === '') continue
      const policy = JSON.parse(line) as Record<string, Record<string, unknown>>
      const body = Object.values(policy)[0]
      this.policies.set(String(body.id), policy)
    }
    return { changed: true, bytes, policies: this.policies.size }
  }
}
