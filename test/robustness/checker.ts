import type { FinalEntry, History, Operation, Violation } from './history.js'

/**
 * Checks a recorded history against the guarantees the README states, each check on its own
 * (a run reports every check that failed, each with its first violation and the records that
 * show it):
 *
 * - acknowledged_inserts_kept: every acknowledged insert is on the final ledger exactly once
 * - heads_never_move_back: no node's head was ever seen lower than before (but after its
 *   ledger was wiped: a new replica, started from a snapshot)
 * - chains_are_prefixes: every head seen is on the final chain (same hash at that seq)
 * - replicas_converge: every node ends at the final head within one sync interval of the last fault healing
 * - read_your_writes: a read on a node that began after an insert acknowledged there completed
 *   sees it (unless the node's ledger was wiped in between)
 * - no_unit_on_two_hosts: no profile (or sub-account) ran on two hosts at once
 * - no_write_after_revocation: no entry authored by a key after its revocation (until lifted)
 * - no_stream_after_revocation: no stream served to a key by a server whose head held its
 *   revocation; and no revoked node's head ever reached its revocation (something served it)
 * - no_secret_shown: no secret value in any answer or log line
 * - wiped_nodes_start_from_snapshots: a node whose ledger a fault wiped started again from a snapshot
 */
export function checkHistory (history: History): Violation[] {
  return [
    acknowledgedInsertsKept(history),
    headsNeverMoveBack(history),
    chainsArePrefixes(history),
    replicasConverge(history),
    readYourWrites(history),
    noUnitOnTwoHosts(history),
    noWriteAfterRevocation(history),
    noStreamAfterRevocation(history),
    noSecretShown(history),
    wipedNodesStartFromSnapshots(history)
  ].filter((v): v is Violation => v !== undefined)
}

export const CHECKS = [
  'acknowledged_inserts_kept', 'heads_never_move_back', 'chains_are_prefixes', 'replicas_converge', 'read_your_writes',
  'no_unit_on_two_hosts', 'no_write_after_revocation', 'no_stream_after_revocation', 'no_secret_shown',
  'wiped_nodes_start_from_snapshots'
] as const

/** A node whose ledger was wiped starts again from a snapshot (the runs set BOOTSTRAP=snapshot): its log says so. */
function wipedNodesStartFromSnapshots ({ wipes, texts }: History): Violation | undefined {
  for (const node of new Set((wipes ?? []).map(w => w.node))) {
    const started = (texts ?? []).some(t => t.where === `${node} log` && t.text.includes('"msg":"started from a snapshot'))
    if (!started) return { check: 'wiped_nodes_start_from_snapshots', message: `${node}'s ledger was wiped, and its log does not show it started again from a snapshot`, evidence: (wipes ?? []).filter(w => w.node === node) }
  }
  return undefined
}

function acknowledgedInsertsKept ({ operations, final }: History): Violation | undefined {
  const puts = new Map<string, number>()
  for (const e of final) if (e.op === 'put') puts.set(e.id, (puts.get(e.id) ?? 0) + 1)
  for (const op of operations) {
    if (op.kind !== 'insert' || !op.ok || op.id === undefined) continue
    const count = puts.get(op.id) ?? 0
    if (count !== 1) return { check: 'acknowledged_inserts_kept', message: `insert ${op.id} was acknowledged by ${op.node} but is on the final ledger ${count} times`, evidence: [op] }
  }
  return undefined
}

/** Whether `node`'s ledger was wiped after `fromMs` and at or before `toMs`: a new replica since. */
const wipedBetween = (wipes: History['wipes'], node: string, fromMs: number, toMs: number): boolean =>
  (wipes ?? []).some(w => w.node === node && w.atMs > fromMs && w.atMs <= toMs)

function headsNeverMoveBack ({ heads, wipes }: History): Violation | undefined {
  const last = new Map<string, (typeof heads)[number]>()
  for (const sample of [...heads].sort((a, b) => a.atMs - b.atMs)) {
    const before = last.get(sample.node)
    if (before !== undefined && sample.seq < before.seq && !wipedBetween(wipes, sample.node, before.atMs, sample.atMs)) {
      return { check: 'heads_never_move_back', message: `${sample.node}'s head moved back from ${before.seq} to ${sample.seq}`, evidence: [before, sample] }
    }
    last.set(sample.node, sample)
  }
  return undefined
}

function chainsArePrefixes ({ heads, final }: History): Violation | undefined {
  const bySeq = new Map(final.map(e => [e.seq, e]))
  const top = final.reduce((max, e) => Math.max(max, e.seq), 0)
  for (const sample of heads) {
    if (sample.seq > top) return { check: 'chains_are_prefixes', message: `${sample.node} held seq ${sample.seq}, past the final head ${top}`, evidence: [sample] }
    const entry = bySeq.get(sample.seq)
    if (sample.hash !== undefined && entry !== undefined && entry.hash !== sample.hash) {
      return { check: 'chains_are_prefixes', message: `${sample.node}'s entry ${sample.seq} has hash ${sample.hash.slice(0, 12)}…, the final chain ${entry.hash.slice(0, 12)}…`, evidence: [sample, entry] }
    }
  }
  return undefined
}

function replicasConverge ({ heads, final, healedAtMs, syncIntervalMs, nodeKeys }: History): Violation | undefined {
  if (healedAtMs === undefined || syncIntervalMs === undefined) return undefined
  const top = final.reduce((max, e) => Math.max(max, e.seq), 0)
  const deadline = healedAtMs + syncIntervalMs
  const ranges = revokedRanges(final)
  for (const node of new Set(heads.map(h => h.node))) {
    // a node revoked for good gets nothing more: it is not expected to converge
    const key = nodeKeys?.[node]
    if (key !== undefined && ranges.get(key)?.some(([, to]) => to === Infinity) === true) continue
    const after = heads.filter(h => h.node === node && h.atMs >= deadline)
    if (after.length === 0) continue
    const lastSeen = after[after.length - 1]
    if (lastSeen.seq !== top) return { check: 'replicas_converge', message: `${node} ended at ${lastSeen.seq}, not the final head ${top}, though the last fault healed ${syncIntervalMs} ms before`, evidence: [lastSeen] }
  }
  return undefined
}

function readYourWrites ({ operations, wipes }: History): Violation | undefined {
  // indexed, not every read against every write: a ten-minute run records 100,000 operations
  const firstDelete = new Map<string, number>()
  for (const op of operations) {
    if (op.kind === 'delete' && op.id !== undefined) firstDelete.set(op.id, Math.min(firstDelete.get(op.id) ?? Infinity, op.invokeMs))
  }
  const writesById = new Map<string, Operation[]>()
  const writesByNode = new Map<string, Operation[]>()
  for (const op of operations) {
    if (op.kind !== 'insert' || !op.ok || op.id === undefined) continue
    for (const [map, key] of [[writesById, op.id], [writesByNode, op.node]] as const) {
      const list = map.get(key)
      if (list === undefined) map.set(key, [op]); else list.push(op)
    }
  }
  for (const read of operations) {
    if (read.kind !== 'read' || !read.ok || read.sees === undefined) continue
    const seen = new Set(read.sees)
    const candidates = read.scope === undefined ? writesByNode.get(read.node) ?? [] : read.scope.flatMap(id => writesById.get(id) ?? [])
    for (const write of candidates) {
      if (write.node !== read.node || write.completeMs >= read.invokeMs || wipedBetween(wipes, read.node, write.completeMs, read.invokeMs)) continue
      // a delete of it that may have happened before the read answered makes its absence fine
      if ((firstDelete.get(write.id!) ?? Infinity) <= read.completeMs) continue
      if (!seen.has(write.id!)) return { check: 'read_your_writes', message: `a read on ${read.node} that began after insert ${write.id} was acknowledged there does not see it`, evidence: [write, read] }
    }
  }
  return undefined
}

function noUnitOnTwoHosts ({ runs }: History): Violation | undefined {
  const byUnit = new Map<string, typeof runs>()
  for (const run of runs) byUnit.set(run.unit, [...(byUnit.get(run.unit) ?? []), run])
  for (const [unit, list] of byUnit) {
    const sorted = [...list].sort((a, b) => a.startMs - b.startMs)
    for (let i = 0; i < sorted.length; i++) {
      for (let j = i + 1; j < sorted.length && sorted[j].startMs < (sorted[i].stopMs ?? Infinity); j++) {
        if (sorted[j].host !== sorted[i].host) {
          return { check: 'no_unit_on_two_hosts', message: `${unit} ran on ${sorted[i].host} and ${sorted[j].host} at once`, evidence: [sorted[i], sorted[j]] }
        }
      }
    }
  }
  return undefined
}

/** Per key, the seq ranges in which it was revoked: [revocation seq, seq of its lifting or Infinity). */
function revokedRanges (final: FinalEntry[]): Map<string, Array<[number, number]>> {
  const ranges = new Map<string, Array<[number, number]>>()
  const byId = new Map<string, FinalEntry>()
  for (const e of [...final].sort((a, b) => a.seq - b.seq)) {
    if (e.op === 'put') byId.set(e.id, e)
    if (e.op === 'put' && e.type === 'revocation' && e.revokes !== undefined) ranges.set(e.revokes, [...(ranges.get(e.revokes) ?? []), [e.seq, Infinity]])
    if (e.op === 'delete' && e.target !== undefined) {
      const lifted = byId.get(e.target)
      const list = lifted?.revokes === undefined ? undefined : ranges.get(lifted.revokes)
      const open = list?.find(r => r[0] === lifted!.seq && r[1] === Infinity)
      if (open !== undefined) open[1] = e.seq
    }
  }
  return ranges
}

const within = (seq: number, ranges: Array<[number, number]> | undefined): boolean => ranges?.some(([from, to]) => seq > from && seq < to) === true

function noWriteAfterRevocation ({ final }: History): Violation | undefined {
  const ranges = revokedRanges(final)
  for (const e of final) {
    if (within(e.seq, ranges.get(e.author))) return { check: 'no_write_after_revocation', message: `entry ${e.seq} was written by key ${e.author.slice(0, 12)}… after its revocation`, evidence: [e] }
  }
  return undefined
}

function noStreamAfterRevocation ({ final, served, heads, nodeKeys }: History): Violation | undefined {
  const ranges = revokedRanges(final)
  // a revoked node holding the revocation's seq or later was served it (or what followed) by some server
  for (const sample of heads) {
    const key = nodeKeys?.[sample.node]
    if (key === undefined) continue
    const during = ranges.get(key)?.find(([from, to]) => sample.seq >= from && sample.seq < to)
    if (during !== undefined) return { check: 'no_stream_after_revocation', message: `${sample.node} (key ${key.slice(0, 12)}…) held seq ${sample.seq}, at or past its revocation at ${during[0]}: a server served it after revoking it`, evidence: [sample] }
  }
  for (const s of served ?? []) {
    if (within(s.serverSeq + 0.5, ranges.get(s.key))) return { check: 'no_stream_after_revocation', message: `${s.server} served key ${s.key.slice(0, 12)}… at its head ${s.serverSeq}, which holds that key's revocation`, evidence: [s] }
  }
  return undefined
}

function noSecretShown ({ texts, secrets }: History): Violation | undefined {
  for (const secret of secrets ?? []) {
    if (secret === '') continue
    const shown = (texts ?? []).find(t => t.text.includes(secret))
    if (shown !== undefined) return { check: 'no_secret_shown', message: `a secret was shown in ${shown.where}`, evidence: [{ where: shown.where, at: shown.text.indexOf(secret) }] }
  }
  return undefined
}

/** The operations of a history, for a report: counts by kind and outcome. */
export function operationCounts (operations: Operation[]): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const op of operations) {
    const key = `${op.kind}_${op.ok ? 'ok' : 'failed'}`
    counts[key] = (counts[key] ?? 0) + 1
  }
  return counts
}
