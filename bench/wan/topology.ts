import { envInt } from '../lib/harness.js'

/**
 * The simulated wide-area network: hosts in regions, each host its own Linux network namespace,
 * every inter-host connection through the link emulator (link-emulator.ts), which adds the
 * latency, jitter, stalls and partitions between the two hosts' regions.
 *
 * Addresses (all inside namespaces this harness makes, never on the machine's own network):
 *   10.213.0.1        the hub namespace's side of every veth (the harness and the emulator run there)
 *   10.213.1.<i>      host i's own address (its namespace's eth0); reachable from the hub only
 *   10.213.2.<i>      host i's public address: the emulator listens there and forwards to 10.213.1.<i>
 * A host routes only 10.213.0.1 and 10.213.2.0/24, and the hub does not forward: two hosts can
 * reach each other only through the emulator.
 */

export const SUBNET = '10.213'
export const HUB_IP = `${SUBNET}.0.1`
/** host indexes run 1..MAX_HOSTS (one /24 each for own and public addresses) */
export const MAX_HOSTS = 250

export type HostRole = 'master' | 'slave' | 'worker' | 'member'

export interface WanHost {
  /** the node's name (NODE_NAME) */
  name: string
  role: HostRole
  /** 1-based, unique: the last byte of its addresses */
  index: number
  /** 0-based region number */
  region: number
  /** its network namespace */
  ns: string
  /** not started with the fleet: a node that joins later (the catch-up scenario) */
  spare?: boolean
  /** its own address, in its namespace */
  ip: string
  /** where other hosts reach it: the emulator's address for it */
  publicIp: string
}

export interface LinkSettings {
  /** round trip between two hosts of one region, ms */
  localRttMs: number
  /** round trip between regions, ms: pair (a, b) gets one value spread over [min, max] */
  remoteRttMs: [number, number]
  /** jitter as a fraction of the one-way delay (each chunk gets ± that, order kept) */
  jitter: number
  /** the fraction of chunks stalled as after a lost segment */
  stall: number
  /** the stall's pause: Linux's minimum RTO (200 ms) plus the link's round trip */
  stallMinMs: number
  /** per-host bandwidth cap, kbit/s (tbf on its veth), 0 = none */
  rateKbit: number
  /** each region's hosts behind one NAT: others see their connections come from one address */
  nat: boolean
}

export interface WanTopology {
  /** distinguishes this run's namespaces: `lmwan-<runId>-...` */
  runId: string
  hubNs: string
  regions: number
  hosts: WanHost[]
  links: LinkSettings
}

export const NS_PREFIX = 'lmwan-'

export interface TopologySizes {
  regions: number
  masters: number
  slaves: number
  workers: number
  members: number
  /** nodes that join later (catch-up), one in the first region and one in the last */
  joiners: number
}

/**
 * Sizes from WAN_* env vars. The default is the 30-node network (a master, 3 slaves, 12 workers,
 * 14 members) with a standby master beside it and 2 nodes joining later.
 */
export function sizesFromEnv (defaults: TopologySizes = { regions: 3, masters: 2, slaves: 3, workers: 12, members: 14, joiners: 2 }): TopologySizes {
  return {
    regions: envInt('WAN_REGIONS', defaults.regions),
    masters: envInt('WAN_MASTERS', defaults.masters),
    slaves: envInt('WAN_SLAVES', defaults.slaves),
    workers: envInt('WAN_WORKERS', defaults.workers),
    members: envInt('WAN_MEMBERS', defaults.members),
    joiners: envInt('WAN_JOINERS', defaults.joiners)
  }
}

export function linksFromEnv (): LinkSettings {
  const num = (name: string, fallback: number): number => {
    const text = process.env[name]
    if (text === undefined || text.trim() === '') return fallback
    const n = Number(text)
    if (!Number.isFinite(n) || n < 0) throw new Error(`${name}=${text}: expected a non-negative number`)
    return n
  }
  const remote = (process.env.WAN_REMOTE_RTT_MS ?? '80-150').split('-').map(Number)
  if (remote.length < 1 || remote.length > 2 || remote.some(n => !Number.isFinite(n) || n < 0)) {
    throw new Error(`WAN_REMOTE_RTT_MS=${process.env.WAN_REMOTE_RTT_MS}: expected milliseconds or a range such as 80-150`)
  }
  return {
    localRttMs: num('WAN_LOCAL_RTT_MS', 20),
    remoteRttMs: [remote[0], remote[1] ?? remote[0]],
    jitter: num('WAN_JITTER', 0.1),
    stall: num('WAN_STALL', 0.005),
    stallMinMs: num('WAN_STALL_MIN_MS', 200),
    rateKbit: num('WAN_RATE_KBIT', 0),
    nat: process.env.WAN_NAT === '1' || process.env.WAN_NAT === 'true'
  }
}

/**
 * Places the hosts: masters, slaves, workers and members spread round-robin over the regions
 * (the first master, slave, worker and member in region 0).
 */
export function makeTopology (runId: string, sizes: TopologySizes, links: LinkSettings): WanTopology {
  if (sizes.regions < 1) throw new Error('WAN_REGIONS: at least one region')
  if (sizes.masters < 1) throw new Error('WAN_MASTERS: at least one master')
  const total = sizes.masters + sizes.slaves + sizes.workers + sizes.members + sizes.joiners
  if (total > MAX_HOSTS) throw new Error(`${total} hosts: at most ${MAX_HOSTS}`)
  const hosts: WanHost[] = []
  const add = (role: HostRole, count: number, prefix: string = role): void => {
    for (let i = 0; i < count; i++) {
      const index = hosts.length + 1
      const spare = prefix === 'joiner'
      hosts.push({
        name: `${prefix}-${i + 1}`,
        role,
        index,
        // joiners: the first near the master, the next in the farthest region
        region: spare ? (i % 2 === 0 ? 0 : sizes.regions - 1) : i % sizes.regions,
        ...(spare ? { spare } : {}),
        ns: `${NS_PREFIX}${runId}-h${index}`,
        ip: `${SUBNET}.1.${index}`,
        publicIp: `${SUBNET}.2.${index}`
      })
    }
  }
  add('master', sizes.masters)
  add('slave', sizes.slaves)
  add('worker', sizes.workers)
  add('member', sizes.members)
  add('member', sizes.joiners, 'joiner')
  return { runId, hubNs: `${NS_PREFIX}${runId}-hub`, regions: sizes.regions, hosts, links }
}

/** The round trip between two regions: local within one, else spread over the remote range by pair. */
export function rttMs (links: LinkSettings, a: number, b: number, regions: number): number {
  if (a === b) return links.localRttMs
  const [min, max] = links.remoteRttMs
  const pairs = (regions * (regions - 1)) / 2
  if (pairs <= 1) return max
  const [lo, hi] = a < b ? [a, b] : [b, a]
  // pair number in a fixed order: (0,1), (0,2), ..., (1,2), ...
  let k = 0
  for (let i = 0; i < lo; i++) k += regions - 1 - i
  k += hi - lo - 1
  return Math.round(min + (max - min) * (k / (pairs - 1)))
}
