import { Mutex } from 'async-mutex'
import { LedgerMeshError, errorMessage } from '../../base/errors.js'
import type { Ledger } from '../../ledger/ledger.js'
import { holdsKey, isAdmittedIn } from '../../ledger/ledger-rules.js'
import type { Logger } from '../../base/logger.js'
import type { Signer } from '../../policies/keys.js'
import { type LedgerOp, type Policy, policyBody, policyId } from '../../policies/policy.js'
import { preparePolicy, prepareTombstone } from '../../policies/prepare.js'
import { NODE_POLICY_TYPES } from '../../policies/schemas.js'
import { DEFAULT_TOKEN_TTL_MS, DEFAULT_TOKEN_USES, MAX_TOKEN_TTL_MS } from './constants.js'
import type { JoinGrantor } from '../../protocols/join/index.js'
import { newJoinToken, parseJoinToken, secretDigest, secretMatches } from './tokens.js'

export interface GatekeeperOptions {
  ledger: Ledger
  /** the master's key: admission policies are signed with it */
  signer: Signer
  log: Logger
  /** told of every join refused (for metrics) */
  onRefused?: (reason: string) => void
  /**
   * How its policies reach the ledger: by default this ledger's own group commit (the active
   * master); a standby master sends them on to the active master instead.
   */
  submit?: (op: LedgerOp) => Promise<{ seq?: number }>
}


const short = (key: string): string => `${key.slice(0, 12)}…`

/**
 * The master's gatekeeper: keeps the network's admission mode on the ledger, creates join
 * tokens, admits keys (for a token, or by hand) and revokes them. Everything it decides is a
 * master-signed policy (`network`, `join_token`, `admission`, `revocation`), so every replica
 * checks the same rules when it verifies the ledger. Joins are decided one at a time, so a
 * token's uses are counted exactly.
 */
export class Gatekeeper {
  /** joins are decided one at a time */
  private readonly joins = new Mutex()

  constructor (private readonly opts: GatekeeperOptions) {}

  private async submit (op: LedgerOp): Promise<{ seq?: number }> {
    return this.opts.submit !== undefined ? await this.opts.submit(op) : await this.opts.ledger.submit(op)
  }

  /** Makes the ledger say what ADMISSION says: `required` writes the network policy, `open` deletes it. */
  async ensureMode (mode: 'required' | 'open'): Promise<void> {
    const { ledger, signer, log } = this.opts
    const live = [...ledger.state.policiesOfType('network')]
    const required = live.filter(p => policyBody(p).admission === 'required')
    if (mode === 'required' && required.length === 0) {
      await this.submit({ op: 'put', policy: preparePolicy({ network: { admission: 'required' } }, signer) })
      log.info('admission required: only the master, admins and admitted keys may sync, renew leases and write')
    } else if (mode === 'open') {
      for (const policy of required) await this.submit({ op: 'delete', policy: prepareTombstone(policyId(policy), signer) })
      if (required.length > 0) log.warn('ADMISSION=open: any key may now sync and write')
    }
  }

  /** `create join token`: a token that admits up to `uses` keys until `ttlMs` from now, pinned to the trusted masters' keys. */
  async createToken (opts: { ttlMs?: number, uses?: number } = {}): Promise<{ token: string, tokenId: string, expires: string, uses: number }> {
    const ttlMs = opts.ttlMs ?? DEFAULT_TOKEN_TTL_MS
    const uses = opts.uses ?? DEFAULT_TOKEN_USES
    if (!(ttlMs > 0 && ttlMs <= MAX_TOKEN_TTL_MS)) throw new LedgerMeshError('bad_command', `a join token's ttl must be more than 0 and at most 365 days, found ${ttlMs} ms`)
    if (!Number.isInteger(uses) || uses < 1 || uses > 1_000_000) throw new LedgerMeshError('bad_command', `a join token's uses must be a whole number from 1 to 1000000, found ${uses}`)
    // shown only to this master or another the ledger trusts (this one first: it made the token)
    const token = newJoinToken([this.opts.signer.publicKey, ...[...this.opts.ledger.masterKeys].sort()])
    const expires = new Date(Date.now() + ttlMs).toISOString()
    await this.submit({
      op: 'put',
      policy: preparePolicy({ join_token: { token_id: token.tokenId, secret_sha256: secretDigest(token.secret), expires, uses } }, this.opts.signer)
    })
    this.opts.log.info({ tokenId: token.tokenId, expires, uses }, 'join token created')
    return { token: token.text, tokenId: token.tokenId, expires, uses }
  }

  /** `admit node`: admits `key` (lifting a revocation of it). Idempotent. */
  async admit (key: string, opts: { name?: string, via: 'admin' | 'join_token', token?: string }): Promise<{ seq: number, already: boolean }> {
    const { ledger, signer, log } = this.opts
    for (const revocation of [...ledger.state.lookup('revocation', 'key', key)]) {
      await this.submit({ op: 'delete', policy: prepareTombstone(policyId(revocation), signer) })
      log.info({ key }, 'revocation lifted')
    }
    const existing = [...ledger.state.lookup('admission', 'key', key)].find(p => policyBody(p).key === key)
    if (existing !== undefined) return { seq: ledger.state.seqOf(policyId(existing)) ?? ledger.head.seq, already: true }
    const body: Record<string, string> = { key, via: opts.via }
    if (opts.name !== undefined && opts.name !== '') body.name = opts.name
    if (opts.token !== undefined) body.token = opts.token
    const entry = await this.submit({ op: 'put', policy: preparePolicy({ admission: body }, signer) })
    log.info({ key, name: opts.name, via: opts.via, token: opts.token, seq: entry.seq }, 'node admitted')
    return { seq: entry.seq ?? ledger.head.seq, already: false }
  }

  /**
   * `revoke node`: the key may no longer sync, renew its lease or write, and its declarations
   * are deleted. Its lease then lapses (the allocator refuses renewals), so its profiles move
   * once the lease and its grace are over, never while it may still run them.
   */
  async revoke (key: string, reason?: string): Promise<{ declarations: string[], already: boolean }> {
    const { ledger, signer, log } = this.opts
    if (key === signer.publicKey) throw new LedgerMeshError('bad_command', 'revoke node: the master cannot revoke its own key')
    const already = holdsKey(ledger.state, 'revocation', key)
    if (!already) {
      const body: Record<string, string> = { key }
      if (reason !== undefined && reason !== '') body.reason = reason
      await this.submit({ op: 'put', policy: preparePolicy({ revocation: body }, signer) })
    }
    const declarations: string[] = []
    // a revoked key's declarations are deleted
    for (const type of NODE_POLICY_TYPES) {
      for (const policy of [...ledger.state.policiesOfType(type)]) {
        if (policyBody(policy).public_key !== key) continue
        await this.submit({ op: 'delete', policy: prepareTombstone(policyId(policy), signer) })
        declarations.push(`${type} ${String(policyBody(policy).name)}`)
      }
    }
    log.warn({ key, declarations }, 'node revoked')
    return { declarations, already }
  }

  /** The join protocol's grantor: admits the connecting key for a valid token. */
  readonly redeem: JoinGrantor = async (request) => {
    return await this.joins.runExclusive(async () => await this.redeemNow(request))
  }

  private async redeemNow ({ token: text, name, key, peer }: Parameters<JoinGrantor>[0]): Promise<{ seq: number }> {
    const { ledger, log } = this.opts
    try {
      const token = parseJoinToken(text)
      const record = this.tokenPolicy(token.tokenId)
      const refuse = (reason: string, message: string): never => {
        throw new LedgerMeshError('unauthorized', message, { reason, tokenId: token.tokenId })
      }
      if (record === undefined) refuse('unknown_token', `join token ${token.tokenId} is not on the ledger (never created, or deleted)`)
      const body = policyBody(record!)
      if (!secretMatches(token.secret, String(body.secret_sha256))) refuse('bad_token', `join token ${token.tokenId}: the secret does not match`)
      if (holdsKey(ledger.state, 'revocation', key)) refuse('revoked', `key ${short(key)} was revoked: only an admin's 'admit node where key = ${key}' lets it back`)
      if (isAdmittedIn(ledger.state, key)) return await this.admit(key, { via: 'join_token' })
      if (Date.now() >= Date.parse(String(body.expires))) refuse('expired', `join token ${token.tokenId} expired at ${String(body.expires)}`)
      // counted on the token's own policy (an admission deleted later frees no use); tokens
      // written before that count was kept count their live admissions
      const used = Math.max(Number(body.used ?? 0), [...ledger.state.lookup('admission', 'token', token.tokenId)].length)
      if (used >= Number(body.uses)) refuse('used_up', `join token ${token.tokenId} has admitted ${used} node${used === 1 ? '' : 's'}, its limit`)
      await this.countUse(record!, used + 1)
      return await this.admit(key, { name, via: 'join_token', token: token.tokenId })
    } catch (err) {
      const reason = err instanceof LedgerMeshError && typeof err.details.reason === 'string' ? err.details.reason : 'error'
      log.warn({ peer, key, name, reason, err: errorMessage(err) }, 'join refused')
      this.opts.onRefused?.(reason)
      throw err
    }
  }

  /** The token's live policy (the one with the highest count, while a replacement is being written). */
  private tokenPolicy (tokenId: string): Policy | undefined {
    const live = [...this.opts.ledger.state.lookup('join_token', 'token_id', tokenId)].filter(p => policyBody(p).token_id === tokenId)
    return live.sort((a, b) => Number(policyBody(b).used ?? 0) - Number(policyBody(a).used ?? 0))[0]
  }

  /** Records a redemption before it admits: the token's policy replaced by one counting `used` (a crash between the two loses a use, never frees one). */
  private async countUse (record: Policy, used: number): Promise<void> {
    const { token_id: tokenId, secret_sha256: digest, expires, uses } = policyBody(record)
    await this.submit({ op: 'put', policy: preparePolicy({ join_token: { token_id: tokenId, secret_sha256: digest, expires, uses, used } as never }, this.opts.signer) })
    await this.submit({ op: 'delete', policy: prepareTombstone(policyId(record), this.opts.signer) })
  }
}
