/**
 * A discrete-event model of how one insert reaches every replica: the master commits it, then
 * pushes it on each watch stream (one after another, on its CPU), each push crosses a link
 * (delay, jitter, bandwidth, the occasional stall of a lost segment), the replica verifies and
 * applies it on its CPU, and a replica that others sync from (a relay) pushes it on to them.
 * CPUs are either each node's own (a deployment) or one pool every node shares (the real runs
 * on one machine, which the model is checked against). Costs come from calibrate.ts.
 */

/**
 * Per-hop costs, in ms of CPU unless said otherwise. The first ones are on an insert's
 * critical path; the `...ExtraMs` ones are what real runs showed a node spending per insert
 * beyond them (keep-alives, checkpoint gossip, anti-entropy pulls, logging: per-watch
 * overhead), which the model runs as background tasks competing for the same CPU.
 */
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
  /** background CPU per insert on the master, whatever the number of replicas */
  masterExtraMs: number
  /** background CPU per insert on a node serving sync, per node syncing from it */
  watchExtraMs: number
  /** background CPU per insert on a replica */
  replicaExtraMs: number
  /** the mean size of a background task (sizes are exponentially distributed) */
  bgTaskMs: number
  /**
   * wall time a hop takes beyond the modelled CPU and link (the network stack on both ends,
   * event-loop wake-ups): fitted to the 5-replica calibration run
   */
  hopMs: number
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
  /** background CPU of every process while idle, as a fraction of a core (timers, keep-alives) */
  backgroundLoad?: number
  /** the time between inserts (background work per insert is spread over it) */
  periodMs: number
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
  peek (): number { return this.heap[0].at }
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
 * One machine's processes sharing its cores the way the kernel shares them: every process
 * with work runs at min(1, cores / busy processes) of a core (processor sharing), and each
 * process runs its own tasks one after another (one event loop).
 */
class SharedMachine {
  private readonly queues = new Map<number, Array<{ work: number, done: (at: number) => void }>>()
  private now = -Infinity

  constructor (private readonly cores: number, private readonly speed: number) {}

  private get rate (): number { return this.speed * Math.min(1, this.cores / Math.max(1, this.queues.size)) }

  /** Work done by every busy process up to `to`. */
  advance (to: number): void {
    if (this.queues.size > 0 && to > this.now) {
      const done = (to - this.now) * this.rate
      for (const queue of this.queues.values()) queue[0].work -= done
    }
    this.now = Math.max(this.now, to)
  }

  add (at: number, proc: number, work: number, done: (at: number) => void): void {
    this.advance(at)
    const queue = this.queues.get(proc)
    if (queue === undefined) this.queues.set(proc, [{ work, done }])
    else queue.push({ work, done })
  }

  /** When the next task ends (Infinity: none running). */
  next (): number {
    let least = Infinity
    for (const queue of this.queues.values()) least = Math.min(least, queue[0].work)
    return least === Infinity ? Infinity : this.now + Math.max(0, least) / this.rate
  }

  /** Ends the tasks done by `at`, calling their continuations. */
  finish (at: number): void {
    this.advance(at)
    const ended: Array<(at: number) => void> = []
    for (const [proc, queue] of this.queues) {
      if (queue[0].work > 1e-9) continue
      ended.push(queue.shift()!.done)
      if (queue.length === 0) this.queues.delete(proc)
    }
    for (const done of ended) done(at)
  }
}

/**
 * One insert through the network: answers when the last replica applied it and what the
 * master sent. `noise` draws an extra delay for a replica's apply, or 0.
 */
export function simulateInsert (net: Network, costs: Costs, rand: () => number, noise: () => number = () => 0): InsertOutcome {
  const n = net.nodes.length
  const shared = net.sharedCores !== undefined
  // the cores left after every process's idle load
  const idle = shared ? Math.min(0.9, ((net.backgroundLoad ?? 0) * (n + 1)) / net.sharedCores!) : 0
  const machine = shared ? new SharedMachine(net.sharedCores!, 1 - idle) : undefined
  const own = new Map<number, Cores>()
  const events = new Events<() => void>()
  /** Runs `ms` of CPU on `node` (-1: the master) from `at`, then `then` at its end. */
  const run = (node: number, at: number, ms: number, then: (end: number) => void): void => {
    if (machine !== undefined) { events.push(at, () => { machine.add(at, node, ms, then) }); return }
    // (as the event of its start: a FIFO queue takes tasks in the order they become ready)
    events.push(at, () => {
      let cores = own.get(node)
      if (cores === undefined) { cores = new Cores(1); own.set(node, cores) }
      const end = cores.run(at, ms)
      events.push(end, () => { then(end) })
    })
  }
  const children: number[][] = Array.from({ length: n + 1 }, () => [])
  net.nodes.forEach((node, i) => children[node.source + 1].push(i))
  const regionOf = (node: number): number => node < 0 ? net.masterRegion : net.nodes[node].region
  // background work per insert, node by node
  const extra = (node: number): number => (node < 0 ? costs.masterExtraMs : costs.replicaExtraMs) + children[node + 1].length * costs.watchExtraMs
  // a leaf replica with its own CPU: its background only delays its own apply, by what is
  // left of a background task when the apply arrives (busy with the chance of its load)
  const leafDelay = (node: number): number => {
    if (shared || children[node + 1].length > 0) return 0
    const load = Math.min(0.95, extra(node) / net.periodMs)
    return rand() < load ? rand() * costs.bgTaskMs : 0
  }
  const linkFree = new Array<number>(n + 1).fill(0)
  let masterBytes = 0
  let last = 0
  const appliedMs = new Array<number>(n).fill(0)

  // Background tasks over the period before the insert and the one after (the next insert's
  // share arrives while this one propagates): for every process on a shared machine, else for
  // the master and the relays, whose queues the insert's own tasks wait in.
  for (let node = -1; node < n; node++) {
    if (!shared && node >= 0 && children[node + 1].length === 0) continue
    let work = 2 * extra(node)
    while (work > 0) {
      // exponentially distributed sizes: mostly short tasks, now and then a long one (a
      // garbage collection, a gossip round answering many peers)
      const size = Math.min(work, -Math.log(1 - rand()) * costs.bgTaskMs)
      work -= size
      run(node, net.periodMs * (2 * rand() - 1), size, () => {})
    }
  }
  /** `from` pushes the entry on its watch streams, one after another. */
  const push = (from: number, at: number, index: number): void => {
    const targets = children[from + 1]
    if (index >= targets.length) return
    const to = targets[index]
    run(from, at, costs.pushMs, sent => {
      push(from, sent, index + 1)
      const onWire = net.links.rateKbit > 0 ? (costs.pushBytes * 8) / net.links.rateKbit : 0
      const departs = Math.max(sent, linkFree[from + 1]) + onWire
      linkFree[from + 1] = departs
      const oneWay = net.links.rttMs(regionOf(from), regionOf(to)) / 2
      let delay = oneWay * (1 + net.links.jitter * (2 * rand() - 1))
      if (rand() < net.links.stall) delay += net.links.stallMinMs + 2 * oneWay
      if (from < 0) masterBytes += costs.pushBytes
      const arrives = departs + delay + costs.hopMs
      run(to, arrives + leafDelay(to), costs.applyMs, end => {
        const applied = end + noise()
        last = Math.max(last, applied)
        appliedMs[to] = applied
        push(to, applied, 0)
      })
    })
  }
  run(-1, 0, costs.commitMs, end => { push(-1, end + costs.durableMs, 0) })

  for (;;) {
    const nextEvent = events.size > 0 ? events.peek() : Infinity
    const nextEnd = machine?.next() ?? Infinity
    if (nextEvent === Infinity && nextEnd === Infinity) break
    if (nextEnd < nextEvent) machine!.finish(nextEnd)
    else events.pop().item()
  }
  return { lastMs: last, appliedMs, masterBytes }
}

/** Many inserts, one after another (each alone in the network, as the benchmarks insert). */
export function simulate (net: Network, costs: Costs, opts: { inserts: number, seed: number, noise?: (rand: () => number) => number }): { p50: number, p99: number, mean: number, masterBytesPerInsert: number } {
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
  return { p50: at(50), p99: at(99), mean: latencies.reduce((a, b) => a + b, 0) / latencies.length, masterBytesPerInsert: bytes / opts.inserts }
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
