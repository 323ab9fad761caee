/** The JSON API the console reads (the node's /v1, documented at /openapi.json). */

// the node's own types for what it answers (type-only: nothing of src/ is bundled)
export type { NetworkData as Network, NetworkNode } from '../src/commands/port.js'

export interface Status { node: string, role: string, node_type: string, ledger?: { head: { seq: number } } }

export interface PlacedProfile { name: string, kind: string, subaccount: string, slave: string | null, worker: string | null, status: string, process: string | null }
export interface WorkerProcess { name: string, kind: string, state: string, pid: number | null, restarts: number, uptime_seconds: number | null }
export interface PlacedSubaccount { name: string, slave: string | null, lease: string | null, draining: boolean, status: string }
/** /v1/profiles: the master's placement (with its sub-accounts), or a worker's processes */
export interface Profiles { profiles: Array<PlacedProfile | WorkerProcess>, subaccounts?: PlacedSubaccount[], worker?: string }

export async function getJson<T> (path: string): Promise<T> {
  const response = await fetch(path, { headers: { accept: 'application/json' } })
  if (!response.ok) throw new Error(`${path} answered ${response.status}`)
  return await response.json() as T
}

export interface SignedHead { seq: number, hash: string, time: string, publicKey: string, signature: string }
/** /v1/ledger/summary */
export interface LedgerSummary { head: { seq: number, hash: string }, signed: SignedHead | null, policies: number, types: Record<string, number> }

/**
 * Policies matching the command language's `where` conditions (GET /v1/policies/search); a
 * bad condition throws the parser's own message.
 */
export async function search<T> (type: string, where: string): Promise<T> {
  const response = await fetch(`/v1/policies/search?${new URLSearchParams({ type, where }).toString()}`, { headers: { accept: 'application/json' } })
  const body = await response.text()
  if (!response.ok) {
    let message = body
    try { message = (JSON.parse(body) as { message?: string }).message ?? body } catch { /* plain text */ }
    throw new Error(message)
  }
  return JSON.parse(body) as T
}

/** The REST token the operator typed, kept for this tab only. */
export function restToken (): string { return sessionStorage.getItem('ledgermesh-rest-token') ?? '' }
export function setRestToken (token: string): void { sessionStorage.setItem('ledgermesh-rest-token', token) }

/** A write (POST, or DELETE) with the token when one was given; the answer's JSON, or its message thrown. */
export async function write<T> (path: string, init: { body?: string, method?: 'POST' | 'DELETE' }): Promise<T> {
  const token = restToken()
  const response = await fetch(path, {
    method: init.method ?? 'POST',
    headers: {
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(token !== '' ? { authorization: `Bearer ${token}` } : {})
    },
    body: init.body
  })
  const text = await response.text()
  let json: unknown
  try { json = JSON.parse(text) } catch { json = undefined }
  if (!response.ok) throw new Error((json as { message?: string } | undefined)?.message ?? `${response.status}: ${text}`)
  return (json ?? text) as T
}

/** Drains a worker or slave through the ledger: a `drain` policy naming it (master or admin key). */
export async function drain (node: string): Promise<void> {
  await write('/v1/policies', { body: JSON.stringify({ drain: { node } }) })
}

/** Deletes a policy by id (DELETE /v1/policies/<id>). */
export async function deletePolicy (id: string): Promise<void> {
  await write(`/v1/policies/${id}`, { method: 'DELETE' })
}

/** Resumes a node drained through the ledger: deletes every `drain` policy naming it. */
export async function resume (node: string): Promise<void> {
  const drains = await search<Array<{ drain: { id: string } }>>('drain', `node = ${node}`)
  for (const policy of drains) await deletePolicy(policy.drain.id)
}

export interface HistorySample { t: number, head: number, entries_in: number, entries_out: number, lag: number }
/** /v1/history */
export interface History { every_ms: number, samples: HistorySample[] }

/** A policy's seq on the ledger (GET /v1/policies/<id>, header X-Ledgermesh-Seq); undefined while it waits in an outbox. */
export async function seqOf (id: string): Promise<number | undefined> {
  const response = await fetch(`/v1/policies/${id}`, { headers: { accept: 'application/json' } })
  if (!response.ok) throw new Error(`/v1/policies/${id} answered ${response.status}`)
  const seq = response.headers.get('x-ledgermesh-seq')
  return seq === null ? undefined : Number(seq)
}
