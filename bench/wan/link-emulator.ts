import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { type LinkSettings, rttMs } from './topology.js'

/**
 * The wide-area links, in user space (this kernel has no netem): a TCP relay every connection
 * between two hosts passes through. It listens on each host's public address and forwards to
 * the host's own address, and on the way, per direction:
 *   - delays each chunk by the one-way delay between the two hosts' regions, ± jitter, never
 *     reordering (a chunk leaves no earlier than the one before it);
 *   - stalls a fraction of chunks for a retransmission-sized pause (Linux's minimum RTO plus the
 *     round trip), holding every later chunk behind it, as TCP does after a lost segment;
 *   - while the two regions are partitioned, forwards nothing: connections are held (the
 *     sender's window fills, as when packets go unanswered) and new ones wait unconnected, until
 *     the partition heals; or, in 'reset' mode, are reset at once.
 * Closing is delayed like data: a FIN or a reset reaches the other side one one-way delay later.
 */

/** Above this many queued bytes in one direction the sender is paused (a TCP window). */
const HIGH_WATER = 1 << 20
const LOW_WATER = 1 << 18

export interface EmulatedHost {
  /** region number of the host */
  region: number
  /** the host's own address (forwarded to) */
  ip: string
  /** the address the emulator listens on for it */
  publicIp: string
}

export type PartitionMode = 'drop' | 'reset'

export interface EmulatorStats {
  connections: number
  /** connections accepted since start */
  accepted: number
  /** connections waiting for a partition to heal before they are forwarded */
  held: number
  bytes: number
  stalls: number
  resets: number
}

type Item = { at: number, chunk: Buffer } | { at: number, end: 'fin' | 'reset' }

/** One direction of a connection: from → to, delayed. */
class DelayedPipe {
  private readonly queue: Item[] = []
  private queued = 0
  private lastAt = 0
  private timer?: NodeJS.Timeout
  private waitingDrain = false
  private finished = false

  constructor (private readonly from: Socket, private readonly to: Socket, private readonly link: Link) {
    from.on('data', (chunk: Buffer) => { this.push({ at: this.deliveryTime(true), chunk }) })
    from.on('end', () => { this.push({ at: this.deliveryTime(false), end: 'fin' }) })
  }

  /** The source went away abruptly: the other side sees a reset, after the delay. */
  reset (): void {
    if (this.finished) return
    this.push({ at: this.deliveryTime(false), end: 'reset' })
  }

  private deliveryTime (mayStall: boolean): number {
    let at = performance.now() + this.link.oneWayMs()
    if (mayStall && Math.random() < this.link.emulator.stallFraction) {
      at += this.link.emulator.links.stallMinMs + this.link.rtt
      this.link.emulator.counters.stalls++
    }
    at = Math.max(at, this.lastAt)
    this.lastAt = at
    return at
  }

  private push (item: Item): void {
    if (this.finished) return
    this.queue.push(item)
    if ('chunk' in item) {
      this.queued += item.chunk.byteLength
      this.link.emulator.counters.bytes += item.chunk.byteLength
      if (this.queued > HIGH_WATER) this.from.pause()
    }
    this.schedule()
  }

  /** After a partition heals: what waited leaves one delay from now. */
  rebase (): void {
    const now = performance.now()
    this.lastAt = 0
    for (const item of this.queue) {
      item.at = Math.max(now + this.link.oneWayMs(), this.lastAt)
      this.lastAt = item.at
    }
    if (this.queued < LOW_WATER) this.from.resume()
    this.schedule()
  }

  schedule (): void {
    if (this.timer !== undefined || this.waitingDrain || this.queue.length === 0 || this.link.blocked()) return
    const wait = Math.max(0, this.queue[0].at - performance.now())
    this.timer = setTimeout(() => { this.timer = undefined; this.flush() }, wait)
  }

  private flush (): void {
    if (this.link.blocked()) return
    const now = performance.now()
    while (this.queue.length > 0 && this.queue[0].at <= now + 0.5) {
      const item = this.queue.shift()!
      if ('end' in item) {
        this.finished = true
        this.queue.length = 0
        if (item.end === 'fin') this.to.end()
        else { this.link.emulator.counters.resets++; this.to.resetAndDestroy() }
        return
      }
      this.queued -= item.chunk.byteLength
      if (this.to.destroyed) return
      if (!this.to.write(item.chunk)) {
        this.waitingDrain = true
        this.to.once('drain', () => { this.waitingDrain = false; this.schedule() })
        break
      }
    }
    if (this.queued < LOW_WATER && this.from.isPaused()) this.from.resume()
    this.schedule()
  }

  clear (): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    this.queue.length = 0
    this.finished = true
  }
}

/** A connection through the emulator: client (in region `from`) to a host (in region `to`). */
class Link {
  readonly rtt: number
  /** waiting for a partition to heal, not yet connected upstream */
  holding = false
  private up?: DelayedPipe
  private down?: DelayedPipe
  private upstream?: Socket

  constructor (readonly emulator: LinkEmulator, private readonly client: Socket, readonly from: number, readonly to: number, private readonly target: { host: string, port: number }, private readonly source?: string) {
    this.rtt = rttMs(emulator.links, from, to, emulator.regions)
    client.setNoDelay(true)
    client.on('error', () => { this.down?.clear(); this.up?.reset() })
    client.on('close', () => { if (this.upstream === undefined) this.emulator.forget(this) })
    if (this.blocked()) {
      if (emulator.partitionMode === 'reset') { this.resetBoth(); return }
      // A partition: the connection waits, unforwarded, until it heals (as a SYN would retry).
      client.pause()
      this.holding = true
      emulator.counters.held++
      return
    }
    this.connect()
  }

  /** Jittered one-way delay, ms. */
  oneWayMs (): number {
    const half = this.rtt / 2
    return half * (1 + this.emulator.links.jitter * (2 * Math.random() - 1))
  }

  blocked (): boolean { return this.emulator.isCut(this.from, this.to) }

  connect (): void {
    if (this.upstream !== undefined || this.client.destroyed) return
    // from the client's public address, as across a real WAN (and so the host's per-address
    // limits see many peers, not one relay)
    const upstream = createConnection({ ...this.target, ...(this.source !== undefined ? { localAddress: this.source } : {}), allowHalfOpen: true })
    this.upstream = upstream
    upstream.setNoDelay(true)
    this.up = new DelayedPipe(this.client, upstream, this)
    this.down = new DelayedPipe(upstream, this.client, this)
    upstream.on('error', () => { this.up?.clear(); this.down?.reset() })
    upstream.on('close', () => { if (this.client.destroyed) this.emulator.forget(this) })
    this.client.on('close', () => { if (upstream.destroyed) this.emulator.forget(this) })
    this.client.resume()
  }

  /** Called when partitions change. */
  unblocked (): void {
    if (this.holding) {
      this.holding = false
      this.emulator.counters.held--
      this.connect()
      return
    }
    this.up?.rebase()
    this.down?.rebase()
  }

  resetBoth (): void {
    this.up?.clear()
    this.down?.clear()
    if (!this.client.destroyed) this.client.resetAndDestroy()
    if (this.upstream !== undefined && !this.upstream.destroyed) this.upstream.resetAndDestroy()
    this.emulator.counters.resets++
    this.emulator.forget(this)
  }

}

export class LinkEmulator {
  readonly counters = { accepted: 0, held: 0, bytes: 0, stalls: 0, resets: 0 }
  stallFraction: number
  partitionMode: PartitionMode = 'drop'
  /** regions cut off from the others (a connection crossing the line is blocked) */
  private isolated = new Set<number>()
  private readonly servers: Server[] = []
  private readonly open = new Set<Link>()
  private readonly hostByIp = new Map<string, EmulatedHost>()
  /** with links.nat: the address each region's connections come from (its first host's) */
  private readonly natByRegion = new Map<number, string>()

  constructor (private readonly linksSettings: LinkSettings, readonly regions: number) {
    this.stallFraction = linksSettings.stall
  }

  get links (): LinkSettings { return this.linksSettings }

  /** Knows `hosts`' regions (by their own address: where their connections come from). */
  addHosts (hosts: EmulatedHost[]): void {
    for (const host of hosts) {
      this.hostByIp.set(host.ip, host)
      if (!this.natByRegion.has(host.region)) this.natByRegion.set(host.region, host.publicIp)
    }
  }

  /** The address a connection from `host` comes from: its own public one, or its region's NAT's. */
  private sourceOf (host: EmulatedHost | undefined): string | undefined {
    if (host === undefined) return undefined
    return this.links.nat ? this.natByRegion.get(host.region) : host.publicIp
  }

  /**
   * Forwards `host.publicIp:listenPort` to `host.ip:targetPort` (the same port unless given;
   * listenPort 0 takes a free one). Resolves with the port it listens on.
   */
  async listen (host: EmulatedHost, targetPort: number, listenPort = targetPort): Promise<number> {
    this.addHosts([host])
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, client => {
      this.counters.accepted++
      // a client the emulator does not know (the harness itself) is as near as the host
      const from = this.hostByIp.get(normalize(client.remoteAddress))
      this.open.add(new Link(this, client, from?.region ?? host.region, host.region, { host: host.ip, port: targetPort }, this.sourceOf(from)))
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(listenPort, host.publicIp, () => { server.off('error', reject); resolve() })
    })
    this.servers.push(server)
    return (server.address() as { port: number }).port
  }

  isCut (a: number, b: number): boolean {
    return this.isolated.has(a) !== this.isolated.has(b)
  }

  /** Cuts `regions` off from every other region (connections within each side go on). */
  partition (regions: number[], mode: PartitionMode = 'drop'): void {
    this.partitionMode = mode
    this.isolated = new Set(regions)
    if (mode === 'reset') {
      for (const link of [...this.open]) if (link.blocked()) link.resetBoth()
    }
  }

  heal (): void {
    const waiting = [...this.open].filter(link => link.blocked())
    this.isolated = new Set()
    for (const link of waiting) link.unblocked()
  }

  /** Resets every connection between regions a and b (both directions), now. */
  cut (a: number, b: number): number {
    let n = 0
    for (const link of [...this.open]) {
      if ((link.from === a && link.to === b) || (link.from === b && link.to === a)) { link.resetBoth(); n++ }
    }
    return n
  }

  forget (link: Link): void {
    if (this.open.delete(link) && link.holding) { link.holding = false; this.counters.held-- }
  }

  stats (): EmulatorStats {
    return { connections: this.open.size, ...this.counters }
  }

  async stop (): Promise<void> {
    for (const link of [...this.open]) link.resetBoth()
    await Promise.all(this.servers.map(async server => { await new Promise(resolve => server.close(resolve)) }))
    this.servers.length = 0
  }
}

/** '::ffff:10.213.1.4' → '10.213.1.4' */
function normalize (address: string | undefined): string {
  return (address ?? '').replace(/^::ffff:/, '')
}
