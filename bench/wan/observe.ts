import type { NodeProcess } from '../../test/helpers/node-process.js'
import { waitFor } from '../../test/helpers/net.js'
import { activeMaster } from '../../test/helpers/masters.js'
import { recordHeads as recordNodeHeads } from '../../test/helpers/heads.js'
import { AUTHORIZATION, type WanFleet, type WanNode } from './fleet.js'

/**
 * What the WAN scenarios watch: when each node applied a seq (from its own log lines, the
 * machine's clock, so watching costs the nodes nothing), every node's head over time (a head
 * must never move back), and a workload whose every acknowledged insert is checked at the end.
 */

interface Applied { time: number, head: number }
const appliedLines = new WeakMap<NodeProcess, { scanned: number, applied: Applied[] }>()

/** When `node` first applied `seq` or later (ms since the epoch), from its log; undefined if not yet. */
export function appliedAt (node: NodeProcess, seq: number): number | undefined {
  let index = appliedLines.get(node)
  if (index === undefined) { index = { scanned: 0, applied: [] }; appliedLines.set(node, index) }
  for (; index.scanned < node.stderr.length; index.scanned++) {
    const line = node.stderr[index.scanned]
    if (!line.includes('sync batch applied') && !line.includes('sync pull applied entries') && !line.includes('followed the store')) continue
    try {
      const entry = JSON.parse(line) as { time: string | number, head?: number }
      if (typeof entry.head === 'number') index.applied.push({ time: typeof entry.time === 'number' ? entry.time : Date.parse(entry.time), head: entry.head })
    } catch { /* not a JSON line */ }
  }
  return index.applied.find(a => a.head >= seq)?.time
}

export interface Head { seq: number, hash?: string }

export async function headOf (node: NodeProcess, timeoutMs = 2000): Promise<Head | undefined> {
  if (node.exitCode !== undefined) return undefined
  try {
    const response = await fetch(`${node.url}/v1/ledger/head`, { signal: AbortSignal.timeout(timeoutMs) })
    return response.ok ? await response.json() as Head : undefined
  } catch { return undefined }
}

/** Polls every live node's head until stopped; `backwards` lists any head that went down. */
export function recordHeads (fleet: WanFleet, everyMs = 500): ReturnType<typeof recordNodeHeads> {
  return recordNodeHeads(() => fleet.live.map(n => n.node), everyMs)
}

export async function sleep (ms: number): Promise<void> { await new Promise(resolve => setTimeout(resolve, ms)) }

export interface Ack { id: string, seq?: number, at: number, via: string }

/** POST /v1/policies; the answer's id (and seq when the master ordered it), or an error. */
export async function insertVia (node: NodeProcess, policy: object, timeoutMs = 10_000, opts: { local?: boolean } = {}): Promise<{ id: string, seq?: number }> {
  const response = await fetch(`${node.url}/v1/policies${opts.local === true ? '?local=true' : ''}`, { method: 'POST', headers: { 'content-type': 'application/json', ...AUTHORIZATION }, body: JSON.stringify(policy), signal: AbortSignal.timeout(timeoutMs) })
  const body = await response.json() as { id: string, seq?: number, error?: string }
  if (response.status !== 201 && response.status !== 202) throw new Error(`${node.name}: insert answered ${response.status}: ${JSON.stringify(body)}`)
  return body
}

/** The one active master (several masters: asks each; one master: that one). */
export async function currentMaster (fleet: WanFleet, timeoutMs = 30_000): Promise<NodeProcess> {
  const masters = fleet.masters.map(m => m.node).filter(m => m.exitCode === undefined)
  if (fleet.masters.length === 1) return masters[0]
  return await activeMaster(masters, timeoutMs)
}

/**
 * Inserts `{probe: {...}}` policies every `everyMs` through `target()` until stopped (with
 * `local`, a member keeps what the master cannot take now in its outbox, and acknowledges it). Every
 * acknowledged insert is kept (the end checks find each on the ledger); a failed one is
 * counted, not retried (its outcome is unknown, so it is not an acknowledged insert).
 */
export function workload (name: string, target: () => Promise<NodeProcess>, everyMs: number, opts: { local?: boolean } = {}): { stop: () => Promise<void>, acks: Ack[], failures: string[] } {
  const acks: Ack[] = []
  const failures: string[] = []
  let running = true
  let i = 0
  const loop = (async () => {
    while (running) {
      const started = Date.now()
      try {
        const node = await target()
        const { id, seq } = await insertVia(node, { probe: { name: `${name}-${i++}-${started}` } }, 10_000, opts)
        acks.push({ id, seq, at: Date.now(), via: node.name })
      } catch (err) {
        failures.push(err instanceof Error ? err.message : String(err))
      }
      await sleep(Math.max(0, everyMs - (Date.now() - started)))
    }
  })()
  return { stop: async () => { running = false; await loop }, acks, failures }
}

/**
 * The ids of `acks` that the master's ledger lacks (each looked up by id). Acknowledged from an
 * outbox (no seq yet) may still be on their way: those get up to `waitMs` to arrive.
 */
export async function missing (master: NodeProcess, acks: Ack[], waitMs = 60_000): Promise<string[]> {
  const queued = acks.filter(a => a.seq === undefined)
  if (queued.length > 0) {
    await waitFor('the outboxes\' inserts on the master', async () => {
      const found = await Promise.all(queued.map(async a => (await fetch(`${master.url}/v1/policies/${a.id}`, { signal: AbortSignal.timeout(10_000) })).status === 200))
      return found.every(Boolean) ? true : undefined
    }, { timeoutMs: waitMs, everyMs: 500 }).catch(() => undefined)
  }
  const lost: string[] = []
  for (let i = 0; i < acks.length; i += 16) {
    await Promise.all(acks.slice(i, i + 16).map(async ack => {
      const response = await fetch(`${master.url}/v1/policies/${ack.id}`, { signal: AbortSignal.timeout(10_000) })
      if (response.status === 404) lost.push(`${ack.id} (acknowledged by ${ack.via})`)
      else if (!response.ok) throw new Error(`${master.name}: GET /v1/policies/${ack.id} answered ${response.status}`)
    }))
  }
  return lost
}

/** Waits until every live node's head equals the master's (seq and hash); the master's head. */
export async function converged (fleet: WanFleet, nodes: WanNode[] = fleet.live, timeoutMs = 120_000): Promise<Head> {
  return await waitFor('every node at the master\'s head', async () => {
    const master = await currentMaster(fleet)
    const head = await headOf(master)
    if (head === undefined) return undefined
    const heads = await Promise.all(nodes.filter(n => n.node.exitCode === undefined).map(async n => await headOf(n.node)))
    return heads.every(h => h?.seq === head.seq && h?.hash === head.hash) ? head : undefined
  }, { timeoutMs, everyMs: 250 })
}
