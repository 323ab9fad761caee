import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import type { Multiaddr } from '@multiformats/multiaddr'
import { errorMessage } from '../base/errors.js'
import type { Logger } from '../base/logger.js'
import { headNote } from '../ledger/head.js'
import type { Ledger } from '../ledger/ledger.js'
import { type WitnessEntry, type WitnessSet, type WitnessedCheckpoint, cosignersOf, witnessSetOf } from '../ledger/witnessed.js'
import type { Signer } from '../policies/keys.js'
import { type LedgerOp, policyBody, policyId } from '../policies/policy.js'
import { preparePolicy, prepareTombstone } from '../policies/prepare.js'
import type { WitnessProtocol } from '../protocols/witness/index.js'
import { tcpAddress } from './master-list.js'
import type { ProcessStatus, Service } from './service.js'

/** A round that fell short of the quorum is tried again this soon, new checkpoints or not. */
const RETRY_MS = 1000

/**
 * Makes the ledger's network policy name the witnesses WITNESSES and WITNESS_QUORUM say (the
 * active master, at start): a changed set replaces the old policy; unset leaves the ledger alone.
 */
export async function ensureWitnessPolicy (ledger: Ledger, signer: Signer, wanted: WitnessSet | undefined, submit: (op: LedgerOp) => Promise<unknown>): Promise<void> {
  if (wanted === undefined) return
  const form = (a: WitnessSet): string => `${a.witnesses.map(w => `${w.key}@${w.address}`).join(',')}/${a.quorum}`
  const same = (a: WitnessSet | undefined): boolean => a !== undefined && form(a) === form(wanted)
  if (same(witnessSetOf(ledger))) return
  const old = [...ledger.state.policiesOfType('network')].filter(p => policyBody(p).witnesses !== undefined)
  await submit({ op: 'put', policy: preparePolicy({ network: { witnesses: wanted.witnesses.map(w => ({ key: w.key, address: w.address })), witness_quorum: wanted.quorum } }, signer) })
  for (const policy of old) await submit({ op: 'delete', policy: prepareTombstone(policyId(policy), signer) })
}

export interface CosignerOptions {
  ledger: Ledger
  protocol: WitnessProtocol
  witnessed: WitnessedCheckpoint
  log: Logger
  /** whether this master writes now (a standby leaves cosigning to the active one) */
  isWriter: () => boolean
}

/**
 * The active master's side of witnessing: after each new checkpoint it asks every witness of
 * the network policy to cosign it (tlog-witness add-checkpoint, with a consistency proof from
 * the last size each witness cosigned), and once a quorum did, keeps the cosigned checkpoint
 * (WitnessedCheckpoint), which `GET /checkpoint` serves and gossip spreads. One round at a
 * time: checkpoints made meanwhile are covered by the next round's, the latest.
 */
export class Cosigner implements Service {
  readonly name = 'Cosigner'
  /** the size each witness last cosigned (what its `old` line must say) */
  private readonly cosignedSize = new Map<string, number>()
  private running = false
  private collecting = false
  private again = false
  private lastProblem?: string
  private readonly targets = new Map<string, Multiaddr>()
  private retry?: NodeJS.Timeout

  constructor (private readonly opts: CosignerOptions) {}

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    this.opts.ledger.on('appended', this.kick)
    this.kick()
  }

  async stop (): Promise<void> {
    this.running = false
    clearTimeout(this.retry)
    this.opts.ledger.off('appended', this.kick)
  }

  status (): ProcessStatus {
    const latest = this.opts.witnessed.latest
    return { status: this.running ? 'Running' : 'Stopped', details: `witnessed size ${latest?.size ?? 0}${this.lastProblem !== undefined ? `, last problem: ${this.lastProblem}` : ''}` }
  }

  private readonly kick = (): void => {
    if (!this.running) return
    if (this.collecting) { this.again = true; return }
    this.collecting = true
    void (async () => {
      try {
        do {
          this.again = false
          await this.collect()
        } while (this.again && this.running)
      } catch (err) {
        this.opts.log.warn({ err: errorMessage(err) }, 'collecting cosignatures failed')
      } finally {
        this.collecting = false
      }
    })()
  }

  /** One round: the latest checkpoint to every witness; kept once a quorum cosigned it. */
  private async collect (): Promise<void> {
    const { ledger, witnessed, log } = this.opts
    const set = witnessSetOf(ledger)
    const signed = ledger.signedHead
    if (set === undefined || signed === undefined || !this.opts.isWriter()) return
    if ((witnessed.latest?.size ?? 0) >= signed.seq) return
    const note = headNote(signed)
    const lines = await Promise.all(set.witnesses.map(async w => await this.ask(w, note, signed.seq)))
    const cosignatures = lines.filter((l): l is string => l !== undefined)
    if (cosignatures.length < set.quorum) {
      this.lastProblem = `checkpoint ${signed.seq} cosigned by ${cosignatures.length} of the ${set.quorum} witnesses needed`
      log.warn({ size: signed.seq, cosigned: cosignatures.length, quorum: set.quorum }, this.lastProblem)
      // without new checkpoints to start a round, ask again: the witnesses may be back
      clearTimeout(this.retry)
      this.retry = setTimeout(this.kick, RETRY_MS)
      this.retry.unref()
      return
    }
    this.lastProblem = undefined
    await witnessed.accept(note + cosignatures.join(''))
  }

  /**
   * The witness's address with its peer id (its key): libp2p then reuses the one connection to
   * it (an address alone would be dialled anew each time), and noise checks it is that witness.
   */
  private targetOf (witness: WitnessEntry): Multiaddr {
    let target = this.targets.get(witness.key)
    if (target === undefined) {
      target = tcpAddress(witness.address).encapsulate(`/p2p/${peerIdFromPublicKey(publicKeyFromRaw(Buffer.from(witness.key, 'hex'))).toString()}`)
      this.targets.set(witness.key, target)
    }
    return target
  }

  /** Asks one witness to cosign; answers its cosignature line, or undefined (logged). */
  private async ask (witness: WitnessEntry, note: string, size: number): Promise<string | undefined> {
    const { ledger, protocol, log } = this.opts
    // a 409 says which size the witness holds: one more try from there
    for (let attempt = 0; attempt < 2; attempt++) {
      const old = this.cosignedSize.get(witness.key) ?? 0
      if (old > size) return undefined
      const proof = old === 0 ? [] : ledger.tree.consistencyProof(old, size)
      const body = `old ${old}\n${proof.map(h => `${h.toString('base64')}\n`).join('')}\n${note}`
      try {
        const reply = await protocol.addCheckpoint(this.targetOf(witness), body)
        if (reply.status === 409 && /^\d+\n?$/.test(reply.body)) { this.cosignedSize.set(witness.key, Number(reply.body.trim())); continue }
        // 503: a witness whose replica has not reached this size yet (it checks the state line)
        if (reply.status !== 200) { log[reply.status === 503 ? 'debug' : 'warn']({ witness: witness.address, status: reply.status, reply: reply.body.trim().slice(0, 300) }, 'the witness did not cosign'); return undefined }
        // its line must be its own valid cosignature of this very checkpoint
        if (!cosignersOf(note + reply.body, { witnesses: [witness], quorum: 1 }).includes(witness.key)) throw new Error('its answer is not its cosignature of the checkpoint')
        this.cosignedSize.set(witness.key, size)
        return reply.body
      } catch (err) {
        log.warn({ witness: witness.address, err: errorMessage(err) }, 'no cosignature from the witness')
        return undefined
      }
    }
    return undefined
  }
}
