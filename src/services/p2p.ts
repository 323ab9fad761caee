import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify, type Identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import type { Connection, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { LedgerMeshError, errorMessage } from '../errors.js'
import type { Logger } from '../node/logger.js'
import type { ProcessStatus, Service } from './service.js'

export type P2PServices = { identify: Identify, ping: Ping }
export type P2PNode = Libp2p<P2PServices>

export interface P2PHostOptions {
  privateKey: PrivateKey
  /** listen address and port (0 = any free port) */
  ip: string
  port: number
  /** hosts exempt from libp2p's inbound rate limit (many nodes on one machine in tests) */
  allow?: string[]
  log: Logger
}

/**
 * The node's p2p server (AnyLog's "TCP server"): a libp2p host with TCP, noise and yamux.
 * Its peer id is the node's Ed25519 identity, the same key that signs the node's policies.
 * The insert and sync protocols register their handlers on it.
 */
export class P2PHost implements Service {
  readonly name = 'TCP'
  private node?: P2PNode
  private failure?: string

  constructor (private readonly opts: P2PHostOptions) {}

  get libp2p (): P2PNode {
    if (this.node === undefined) throw new LedgerMeshError('internal', 'the p2p server is not running (run tcp server first)')
    return this.node
  }

  get running (): boolean { return this.node !== undefined }

  /** the port actually bound (differs from the configured one when that was 0) */
  get port (): number {
    const addr = this.libp2p.getMultiaddrs()[0]
    return Number(addr.toString().split('/')[4])
  }

  get peerId (): string { return this.libp2p.peerId.toString() }

  addresses (): string[] {
    return this.node?.getMultiaddrs().map(a => a.toString()) ?? []
  }

  async start (): Promise<void> {
    const { ip, port, privateKey, allow } = this.opts
    try {
      this.node = await createLibp2p({
        privateKey,
        addresses: { listen: [`/ip4/${ip}/tcp/${port}`] },
        transports: [tcp()],
        connectionEncrypters: [noise()],
        // A master answers bursts of inserts from fresh connections: allow more streams to
        // arrive before the connection is fully set up than yamux's default of 10.
        streamMuxers: [yamux({ maxEarlyStreams: 256 })],
        connectionManager: { allow: (allow ?? [ip]).map(host => `/ip4/${host}`) },
        services: { identify: identify(), ping: ping() }
      })
    } catch (err) {
      this.failure = errorMessage(err)
      throw new LedgerMeshError('bad_config', `cannot start the p2p server on ${ip}:${port}: ${this.failure}`)
    }
    this.opts.log.info({ addrs: this.addresses(), peerId: this.peerId }, 'p2p server listening')
  }

  async stop (): Promise<void> {
    const node = this.node
    this.node = undefined
    if (node === undefined) return
    // node.stop() can take ~500 ms per peer; never let it hold up shutdown for long.
    await Promise.race([node.stop(), new Promise(resolve => setTimeout(resolve, 3000).unref())])
  }

  status (): ProcessStatus {
    if (this.node !== undefined) {
      return { status: 'Running', details: `Listening on: ${this.opts.ip}:${this.port}, Peer: ${this.peerId}, Connections: ${this.node.getConnections().length}` }
    }
    return this.failure !== undefined ? { status: 'Error', details: this.failure } : { status: 'Not declared' }
  }
}

const pendingDials = new WeakMap<P2PNode, Map<string, Promise<Connection>>>()

/**
 * Opens a protocol stream to `target`, sharing one connection per target. Many concurrent
 * dials to a peer not yet connected would otherwise race to open several connections, and
 * libp2p resets the streams of the duplicates it closes.
 */
export async function openStream (libp2p: P2PNode, target: Multiaddr | PeerId, protocol: string, signal: AbortSignal): Promise<Stream> {
  let dials = pendingDials.get(libp2p)
  if (dials === undefined) { dials = new Map(); pendingDials.set(libp2p, dials) }
  const key = target.toString()
  let connecting = dials.get(key)
  if (connecting === undefined) {
    connecting = libp2p.dial(target, { signal })
    dials.set(key, connecting)
    connecting.catch(() => {}).finally(() => { dials.delete(key) })
  }
  const connection = await connecting
  return await connection.newStream(protocol, { signal })
}
