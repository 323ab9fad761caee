/**
 * A discrete-event model of how one insert reaches every replica: the master commits it, then
 * pushes it on each watch stream (one after another, on its CPU), each push crosses a link
 * (delay, jitter, bandwidth, the occasional stall of a lost segment), the replica verifies and
 * applies it on its CPU, and a replica that others sync from (a relay) pushes it on to them.
 * CPUs are either each node's own (a deployment) or one pool every node shares (the real runs
 * on one machine, which the model is checked against). Costs come from calibrate.ts.
 */

/** Per-hop costs, in ms of CPU unless said otherwise. */
export interface Costs {
  /** the master's CPU per insert before any push (validate, sign, order, commit) */
  commitMs: number
  /** time the commit waits without CPU (the store's durable write) */
  durableMs: number
  /** CPU to push one entry on one watch stream (encode, frame, write) */
  pushMs: number
  /** CPU for a replica to receive, verify and apply one pushed entry */
  applyMs: number
  /** bytes a push of one entry puts on the wire */
  pushBytes: number
  /** the entry's own size (the policy as stored) */
  entryBytes: number
}

export interface LinkModel {
  /** round trip between two regions (the same region: the local one) */
  rttMs: (a: number, b: number) => number
  /** ± this fraction of the one-way delay */
  jitter: number
  /** chance that a message is held as after a lost segment */
  stall: number
  /** the hold: the minimum retransmission timeout plus the round trip */
  stallMinMs: number
  /** per-node sending rate, kbit/s (0: unlimited) */
  rateKbit: number
}

export interface SimNode {
  region: number
  /** where it syncs from: -1 the master */
  source: number
}

export interface Network {
  masterRegion: number
  nodes: SimNode[]
  links: LinkModel
  /** cores every node shares (a run on one machine), or undefined: every node has its own */
  sharedCores?: number
  /** each node's own cores when not shared */
  coresPerNode?: number
  /** background CPU of every process as a fraction of a core (timers, keep-alives), shared pool only */
  backgroundLoad?: number
}

/** A seeded generator (mulberry32): the same seed, the same run. */
export function random (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Cores that run tasks in the order they become ready (list scheduling). */
class Cores {
  private readonly free: number[]
  constructor (count: number, private readonly slowdown = 1) { this.free = Array(Math.max(1, count)).fill(0) }
  /** Runs a task of `ms` ready at `at`; answers when it ends. */
  run (at: number, ms: number): number {
    let best = 0
    for (let i = 1; i < this.free.length; i++) if (this.free[i] < this.free[best]) best = i
    const start = Math.max(at, this.free[best])
    this.free[best] = start + ms * this.slowdown
    return this.free[best]
  }
}

/** A binary heap of events by time. */
class Events<T> {
  private readonly heap: Array<{ at: number, seq: number, item: T }> = []
  private seq = 0
  get size (): number { return this.heap.length }
  push (at: number, item: T): void {
    const h = this.heap
    h.push({ at, seq: this.seq++, item })
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (before(h[p], h[i])) break
      ;[h[p], h[i]] = [h[i], h[p]]
      i = p
    }
  }

  pop (): { at: number, item: T } {
    const h = this.heap
    const top = h[0]
    const last = h.pop()!
    if (h.length > 0) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && before(h[l], h[m])) m = l
        if (r < h.length && before(h[r], h[m])) m = r
        if (m === i) break
        ;[h[m], h[i]] = [h[i], h[m]]
        i = m
      }
    }
    return top
  }
}

const before = (a: { at: number, seq: number }, b: { at: number, seq: number }): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq)

export interface InsertOutcome {
  /** insert → the last replica applied it, ms */
  lastMs: number
  /** insert → each replica applied it, ms */
  appliedMs: number[]
  /** bytes the master sent for it */
  masterBytes: number
}

/**
 * One insert through the network: answers when the last replica applied it and what the
 * master sent. `noise` draws an extra delay for a replica's apply (what the calibration run
 * showed beyond the modelled costs), or 0.
 */
export function simulateInsert (net: Network, costs: Costs, rand: () => number, noise: () => number = () => 0): InsertOutcome {
  const n = net.nodes.length
  const shared = net.sharedCores !== undefined
  // the pool's capacity left after every process's background load
  const background = shared ? Math.min(0.9, ((net.backgroundLoad ?? 0) * (n + 1)) / net.sharedCores!) : 0
  const pool = shared ? new Cores(net.sharedCores!, 1 / (1 - background)) : undefined
  const own = shared ? [] : Array.from({ length: n + 1 }, () => new Cores(net.coresPerNode ?? 1))
  const cpu = (node: number): Cores => pool ?? own[node + 1]
  const children: number[][] = Array.from({ length: n + 1 }, () => [])
  net.nodes.forEach((node, i) => children[node.source + 1].push(i))
  const regionOf = (node: number): number => node < 0 ? net.masterRegion : net.nodes[node].region
  // a node's link sends one message at a time at its rate
  const linkFree = new Array<number>(n + 1).fill(0)
  const events = new Events<{ kind: 'arrive', node: number } | { kind: 'push', from: number, index: number }>()
  let masterBytes = 0
  let last = 0
  const appliedMs = new Array<number>(n).fill(0)

  const committed = cpu(-1).run(0, costs.commitMs) + costs.durableMs
  events.push(committed, { kind: 'push', from: -1, index: 0 })
  while (events.size > 0) {
    const { at, item } = events.pop()
    if (item.kind === 'push') {
      const targets = children[item.from + 1]
      if (item.index >= targets.length) continue
      const to = targets[item.index]
      const sent = cpu(item.from).run(at, costs.pushMs)
      // the next push waits for this one's CPU (one stream after another)
      events.push(sent, { kind: 'push', from: item.from, index: item.index + 1 })
      const onWire = net.links.rateKbit > 0 ? (costs.pushBytes * 8) / net.links.rateKbit : 0
      const departs = Math.max(sent, linkFree[item.from + 1]) + onWire
      linkFree[item.from + 1] = departs
      const oneWay = net.links.rttMs(regionOf(item.from), regionOf(to)) / 2
      let delay = oneWay * (1 + net.links.jitter * (2 * rand() - 1))
      if (rand() < net.links.stall) delay += net.links.stallMinMs + 2 * oneWay
      if (item.from < 0) masterBytes += costs.pushBytes
      events.push(departs + delay, { kind: 'arrive', node: to })
    } else {
      const applied = cpu(item.node).run(at, costs.applyMs) + noise()
      last = Math.max(last, applied)
      appliedMs[item.node] = applied
      events.push(applied, { kind: 'push', from: item.node, index: 0 })
    }
  }
  return { lastMs: last, appliedMs, masterBytes }
}

/** Many inserts, one after another (each alone in the network, as the benchmarks insert). */
export function simulate (net: Network, costs: Costs, opts: { inserts: number, seed: number, noise?: (rand: () => number) => number }): { p50: number, p99: number, masterBytesPerInsert: number } {
  const rand = random(opts.seed)
  const latencies: number[] = []
  let bytes = 0
  for (let i = 0; i < opts.inserts; i++) {
    const outcome = simulateInsert(net, costs, rand, opts.noise === undefined ? undefined : () => opts.noise!(rand))
    latencies.push(outcome.lastMs)
    bytes += outcome.masterBytes
  }
  latencies.sort((a, b) => a - b)
  const at = (p: number): number => latencies[Math.min(latencies.length - 1, Math.max(0, Math.ceil((p / 100) * latencies.length) - 1))]
  return { p50: at(50), p99: at(99), masterBytesPerInsert: bytes / opts.inserts }
}

/** A relay tree: the master feeds `fanout[0]` nodes, each of those `fanout[1]`, ...; the rest hang off the last level round-robin. */
export function relayTree (count: number, regions: number, fanout: number[]): SimNode[] {
  const nodes: SimNode[] = []
  let level: number[] = [-1]
  for (const k of fanout) {
    const next: number[] = []
    for (const parent of level) {
      for (let j = 0; j < k && nodes.length < count; j++) {
        // a relay serves its own region where it can: children take their parent's region
        const region = parent < 0 ? nodes.length % regions : nodes[parent].region
        nodes.push({ region, source: parent })
        next.push(nodes.length - 1)
      }
    }
    if (next.length === 0) break
    level = next
  }
  let i = 0
  while (nodes.length < count) {
    const parent = level[i++ % level.length]
    nodes.push({ region: parent < 0 ? nodes.length % regions : nodes[parent].region, source: parent })
  }
  return nodes
}
