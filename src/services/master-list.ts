import { setTimeout as sleep } from 'node:timers/promises'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { LedgerMeshError } from '../base/errors.js'
import type { LedgerState } from '../ledger/state.js'

/**
 * Where a node learns declared masters and their keys: its Ledger, or a light worker's
 * LightReplica (which holds the master declarations with proofs).
 */
export interface MasterSource {
  readonly head: { readonly seq: number, readonly hash: string }
  readonly state: LedgerState
  readonly masterKey: string | undefined
  readonly masterKeys: string[]
}
import { parseHostPort, parseHostPortList } from '../net/host-port.js'
import { policyBody } from '../policies/policy.js'

/** No new attempt starts after this long: rides out a failover of a few seconds. */
export const DEFAULT_BUDGET_MS = 8000
/** Attempts of one call when several masters are known (a dead address fails in milliseconds). */
export const DEFAULT_MAX_ATTEMPTS = 40
/** The wait before the next attempt, jittered so that clients do not retry in step. */
const BACKOFF_MIN_MS = 50
const BACKOFF_MAX_MS = 250
/** The wait doubles after each full round of the list, up to this factor. */
const MAX_ROUND_FACTOR = 4
/** Addresses a standby's `not_active` answer pointed to, kept at most: they come from peers. */
const MAX_HINTED = 8

/** `ip:port` as a libp2p TCP address. */
export function tcpAddress (hostPort: string): Multiaddr {
  const [ip, port] = hostPort.split(':')
  return multiaddr(`/ip4/${ip}/tcp/${port}`)
}

export interface WithMasterOptions {
  /** at most this many attempts; default 1 when one master is known (as before lists), else DEFAULT_MAX_ATTEMPTS */
  attempts?: number
  /** no new attempt starts after this many ms (DEFAULT_BUDGET_MS) */
  budgetMs?: number
  signal?: AbortSignal
  /** told of each failed attempt that is tried again, and where (for logs) */
  onRetry?: (failed: string, err: unknown, next: string) => void
}

/**
 * What a failed attempt means. `rotate`: that master cannot take it now (unreachable, silent,
 * a standby, its store failing): the next one may. `same`: it is overloaded, so it is up; try
 * it again after a pause rather than load another. `stop`: an answer about the request itself
 * (a refusal such as bad_policy or duplicate_id): another master would say the same.
 */
export function retryDecision (err: unknown): 'rotate' | 'same' | 'stop' {
  // not a LedgerMeshError: a connection failure a protocol did not map
  if (!(err instanceof LedgerMeshError)) return 'rotate'
  switch (err.code) {
    case 'master_unreachable': case 'unreachable': case 'not_active': case 'timeout': case 'store_unavailable':
      return 'rotate'
    case 'overloaded':
      return 'same'
    default:
      return 'stop'
  }
}

/**
 * The active master's address a standby's `not_active` carries, if any. Once the ledger
 * trusts master keys, a hint is followed only when it names one of them (`active_key`): an
 * answer naming an address alone, or another key, could send clients to anyone.
 */
export function activeHint (err: unknown, ledger?: MasterSource): string | undefined {
  if (!(err instanceof LedgerMeshError) || err.code !== 'not_active') return undefined
  const { active, active_key: key } = err.details
  if (typeof active !== 'string') return undefined
  if (ledger?.masterKey !== undefined && (typeof key !== 'string' || !ledger.masterKeys.includes(key))) return undefined
  return parseHostPort(active)
}

/** A master's p2p address from its `master_key` (address) or `master` (ip, port) policy. */
function addressOf (body: Record<string, unknown>): string | undefined {
  if (typeof body.address === 'string') return parseHostPort(body.address)
  const ip = body.ip ?? body.external_ip ?? body.local_ip ?? body.internal_ip
  if (typeof ip !== 'string' || (typeof body.port !== 'number' && typeof body.port !== 'string')) return undefined
  return parseHostPort(`${ip}:${body.port}`)
}

/**
 * The masters a client may talk to, in order: LEDGER_CONN's addresses, then those the ledger
 * declares (`master_key` policies' `address`, `master` policies' ip and port), then those a
 * standby pointed to. One of them is `current`; a failure of it moves to the next (rotate),
 * and withMaster runs one request against the masters with bounded retries. Shared by every
 * client path of a node (inserts, the outbox, sync from the master, lease renewals, the join),
 * so one of them finding a master dead spares the others the attempt.
 */
export class MasterList {
  private readonly configured: string[]
  private learned: string[] = []
  private readonly hinted: string[] = []
  /** the ledger and head the learned addresses were read at: read again when either moved */
  private learnedAt?: { ledger: MasterSource, seq: number, hash: string }
  private currentAddress: string

  /** @param ledger the node's ledger to learn masters from; may throw or be undefined while none is connected */
  constructor (addresses: string[], private readonly ledger?: () => MasterSource | undefined) {
    if (addresses.length === 0) throw new LedgerMeshError('bad_command', 'a list of masters needs at least one ip:port')
    this.configured = [...new Set(addresses)]
    this.currentAddress = this.configured[0]
  }

  /** The list `text` names (`master=`, `connection=`): a bad element is a bad_command naming it. */
  static parse (text: string, what: string, ledger?: () => MasterSource | undefined): MasterList {
    try {
      return new MasterList(parseHostPortList(text, 'bad_command'), ledger)
    } catch (err) {
      throw err instanceof LedgerMeshError ? new LedgerMeshError('bad_command', `${what}=${JSON.stringify(text)}: ${err.message}`, err.details) : err
    }
  }

  /** Every known master, in order, each once. */
  get addresses (): string[] {
    this.learn()
    return [...new Set([...this.configured, ...this.learned, ...this.hinted])]
  }

  get size (): number { return this.addresses.length }

  /** The master to try first now. */
  get current (): string { return this.currentAddress }

  /**
   * `from` failed: move to the master after it, unless another caller already moved on from
   * it (then the current one stays: that caller's choice is as fresh). With `to` (the active
   * master a standby named), go there, adding it to the list if unknown. Answers the current one.
   */
  rotate (from: string, to?: string): string {
    if (to !== undefined) {
      if (!this.addresses.includes(to)) {
        this.hinted.push(to)
        if (this.hinted.length > MAX_HINTED) this.hinted.shift()
      }
      this.currentAddress = to
      return to
    }
    if (this.currentAddress !== from) return this.currentAddress
    const list = this.addresses
    // an address the list no longer holds (a ledger rewound past its declaration): start over
    this.currentAddress = list[(list.indexOf(from) + 1) % list.length]
    return this.currentAddress
  }

  /**
   * Runs `fn` against the current master; on a failure that another master (or a later try)
   * may not have, rotates as retryDecision says and tries again after a short jittered pause,
   * within `attempts` and `budgetMs`. A refusal of the request itself is thrown at once, as is
   * the last failure once the bounds are reached. `fn` may be called more than once: what it
   * sends must be safe to send again (an insert is: a second copy is refused duplicate_id).
   */
  async withMaster<T> (fn: (address: string) => Promise<T>, opts: WithMasterOptions = {}): Promise<T> {
    const started = performance.now()
    const budgetMs = opts.budgetMs ?? DEFAULT_BUDGET_MS
    for (let attempt = 1; ; attempt++) {
      opts.signal?.throwIfAborted()
      const address = this.current
      try {
        return await fn(address)
      } catch (err) {
        const decision = retryDecision(err)
        if (decision === 'stop') throw err
        const next = decision === 'same' ? address : this.rotate(address, activeHint(err, this.currentLedger()))
        const attempts = opts.attempts ?? (this.size > 1 ? DEFAULT_MAX_ATTEMPTS : 1)
        if (attempt >= attempts || performance.now() - started >= budgetMs || opts.signal?.aborted === true) throw err
        opts.onRetry?.(address, err, next)
        const round = Math.floor((attempt - 1) / this.size)
        const pause = (BACKOFF_MIN_MS + Math.random() * (BACKOFF_MAX_MS - BACKOFF_MIN_MS)) * Math.min(2 ** round, MAX_ROUND_FACTOR)
        try {
          await sleep(pause, undefined, { signal: opts.signal })
        } catch {
          throw err
        }
      }
    }
  }

  /** The node's ledger, or undefined while none is connected. */
  private currentLedger (): MasterSource | undefined {
    try {
      return this.ledger?.()
    } catch {
      return undefined // no ledger connected yet
    }
  }

  /** Reads the masters the ledger declares, when its head moved since the last read. */
  private learn (): void {
    const ledger = this.currentLedger()
    if (ledger === undefined) return
    const { seq, hash } = ledger.head
    const at = this.learnedAt
    if (at !== undefined && at.ledger === ledger && at.seq === seq && at.hash === hash) return
    const found: string[] = []
    for (const type of ['master_key', 'master']) {
      for (const policy of ledger.state.policiesOfType(type)) {
        const address = addressOf(policyBody(policy))
        if (address !== undefined) found.push(address)
      }
    }
    this.learned = found
    this.learnedAt = { ledger, seq, hash }
  }
}
