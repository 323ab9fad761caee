import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify, type Identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import type { MultiaddrConnection, PrivateKey } from '@libp2p/interface'
import pTimeout from 'p-timeout'
import { LedgerMeshError, errorMessage } from '../base/errors.js'
import { markPrivateNetwork, privateNetwork } from '../net/private-network.js'
import type { Logger } from '../base/logger.js'
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
  /** NETWORK_KEY: a private network; peers without the same key cannot connect at all */
  networkKey?: { key: Uint8Array, id: string }
  log: Logger
}

/**
 * Connection limits for a fleet across a WAN rather than libp2p's defaults, which refuse a
 * host's sixth inbound connection within a second (edge nodes behind one NAT coming back
 * together after a partition heals), an eleventh handshake in flight (at 150 ms round trips a
 * handshake stays pending for half a second, so a master's many replicas reconnecting at once
 * exceed it), and prune past 300 connections (a master holds one per node).
 */
const MAX_CONNECTIONS = 4096
const MAX_INCOMING_PENDING_CONNECTIONS = 256
const INBOUND_CONNECTIONS_PER_HOST_PER_S = 100

/** How long stop() waits for libp2p to stop before it lets go. */
const STOP_TIMEOUT_MS = 3000

/** A remote host's failed inbound handshakes are logged at most once per this long. */
const HANDSHAKE_WARN_EVERY_MS = 60_000
/** remote hosts whose failed handshakes are being counted (a bound on the map) */
const MAX_HANDSHAKE_HOSTS = 1024

/**
 * The node's p2p server (AnyLog's "TCP server"): a libp2p host with TCP, noise and yamux.
 * Its peer id is the node's Ed25519 identity, the same key that signs the node's policies.
 * The insert and sync protocols register their handlers on it.
 */
export class P2PHost implements Service {
  readonly name = 'TCP'
  private node?: P2PNode
  private failure?: string
  /** inbound connections that got through the handshake (pnet, noise) */
  private readonly handshaken = new WeakSet<MultiaddrConnection>()
  /** remote host → failed inbound handshakes not yet logged, and when the last line was */
  private readonly failedHandshakes = new Map<string, { loggedAt: number, unlogged: number }>()

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
    const { ip, port, privateKey, allow, networkKey } = this.opts
    try {
      this.node = await createLibp2p({
        privateKey,
        addresses: { listen: [`/ip4/${ip}/tcp/${port}`] },
        transports: [tcp()],
        // NETWORK_KEY: every connection is wrapped in the pre-shared key's cipher before noise
        // starts, so a peer without the key cannot complete one.
        ...(networkKey !== undefined ? { connectionProtector: privateNetwork(networkKey.key) } : {}),
        connectionEncrypters: [noise()],
        // A master answers bursts of inserts from fresh connections: allow more streams to
        // arrive before the connection is fully set up than yamux's default of 10.
        streamMuxers: [yamux({ maxEarlyStreams: 256 })],
        connectionManager: {
          allow: (allow ?? [ip]).map(host => `/ip4/${host}`),
          maxConnections: MAX_CONNECTIONS,
          maxIncomingPendingConnections: MAX_INCOMING_PENDING_CONNECTIONS,
          inboundConnectionThreshold: INBOUND_CONNECTIONS_PER_HOST_PER_S
        },
        // Not a filter (everything is allowed): it sees which inbound connections fail their
        // handshake, which libp2p itself does not report.
        connectionGater: {
          denyInboundConnection: maConn => { this.watchHandshake(maConn); return false },
          denyInboundEncryptedConnection: (_peer, maConn) => { this.handshaken.add(maConn); return false }
        },
        services: { identify: identify(), ping: ping() }
      })
    } catch (err) {
      this.failure = errorMessage(err)
      throw new LedgerMeshError('bad_config', `cannot start the p2p server on ${ip}:${port}: ${this.failure}`)
    }
    markPrivateNetwork(this.node, networkKey !== undefined)
    this.opts.log.info({ addrs: this.addresses(), peerId: this.peerId, ...(networkKey !== undefined ? { privateNetwork: networkKey.id } : {}) }, networkKey !== undefined ? 'p2p server listening on a private network' : 'p2p server listening')
  }

  /**
   * An inbound connection that closes before its handshake completed is logged, once a minute
   * per remote host at most. On a private network that is what a peer without the key (or
   * with another one) looks like: a warning. Elsewhere it is rarely more than a port probe.
   */
  private watchHandshake (maConn: MultiaddrConnection): void {
    maConn.addEventListener('close', evt => {
      if (this.handshaken.has(maConn) || this.node === undefined) return
      const remote = maConn.remoteAddr.toString()
      const host = remote.split('/')[2] ?? remote
      const now = Date.now()
      let seen = this.failedHandshakes.get(host)
      if (seen === undefined) {
        if (this.failedHandshakes.size >= MAX_HANDSHAKE_HOSTS) this.failedHandshakes.clear()
        seen = { loggedAt: -Infinity, unlogged: 0 }
        this.failedHandshakes.set(host, seen)
      }
      seen.unlogged++
      if (now - seen.loggedAt < HANDSHAKE_WARN_EVERY_MS) return
      const fields = { remote, failures: seen.unlogged, ...(evt.error !== undefined ? { err: errorMessage(evt.error) } : {}) }
      seen.loggedAt = now
      seen.unlogged = 0
      if (this.opts.networkKey !== undefined) {
        this.opts.log.warn(fields, 'inbound connection failed its handshake: this node is on a private network, and a peer without its NETWORK_KEY (or with another one) cannot connect')
      } else {
        this.opts.log.debug(fields, 'inbound connection failed its handshake (a peer on a private network cannot connect to a node without its NETWORK_KEY)')
      }
    }, { once: true })
  }

  async stop (): Promise<void> {
    const node = this.node
    this.node = undefined
    if (node === undefined) return
    // node.stop() can take ~500 ms per peer; never let it hold up shutdown for long.
    await pTimeout(Promise.resolve(node.stop()), { milliseconds: STOP_TIMEOUT_MS, fallback: () => {} })
  }

  status (): ProcessStatus {
    if (this.node !== undefined) {
      const network = this.opts.networkKey !== undefined ? `, Private network: key ${this.opts.networkKey.id}` : ''
      return { status: 'Running', details: `Listening on: ${this.opts.ip}:${this.port}, Peer: ${this.peerId}, Connections: ${this.node.getConnections().length}${network}` }
    }
    return this.failure !== undefined ? { status: 'Error', details: this.failure } : { status: 'Not declared' }
  }
}
