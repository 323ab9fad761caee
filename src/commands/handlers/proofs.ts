import { checkpointNote, consistencyProof, inclusionProof, stateProof } from '../../ledger/proofs.js'
import { witnessSetOf } from '../../ledger/witnessed.js'
import type { Executor } from '../executor.js'
import { jsonOutput, textOutput } from '../output.js'
import type { NodePort } from '../port.js'
import { WhereArgs } from '../where.js'

/**
 * The verifiable log in the command language: the signed checkpoint this node holds, and
 * inclusion and consistency proofs against it (docs/verifiable-log.md). REST's /checkpoint and
 * /v1/proof/* run these same commands.
 */
export function registerProofCommands (executor: Executor, node: NodePort): void {
  // with witnesses, the latest checkpoint a quorum of them cosigned; else the latest signed
  executor.register('get checkpoint', () => {
    const latest = checkpointNote(node.ledger)
    const witnessed = witnessSetOf(node.ledger) === undefined ? undefined : node.witnessed
    const note = witnessed?.note ?? latest
    return textOutput(note.trimEnd(), { checkpoint: note, ...(witnessed !== undefined ? { witnessed: { size: witnessed.size, cosigners: witnessed.cosigners }, latest } : {}) })
  })

  executor.register('reset fork', async () => {
    const cleared = await node.resetFork()
    return textOutput(cleared === undefined ? 'No fork was detected' : `Fork report cleared (detected ${cleared.detected_at}: ${cleared.reason})`, { cleared: cleared ?? null })
  })

  executor.register('blockchain prove', async (cmd, ctx) => {
    const where = new WhereArgs(cmd, ctx)
    if (where.has('id') === where.has('seq')) throw where.error("needs 'id = <policy id>' or 'seq = <entry seq>'")
    const seq = where.int('seq', { min: 1 })
    return jsonOutput(await inclusionProof(node.ledger, { seq, id: where.text('id') }, where.int('size', { min: 1 })))
  })

  executor.register('blockchain prove state', async (cmd, ctx) => {
    const where = new WhereArgs(cmd, ctx)
    const id = where.text('id')
    if (id === undefined) throw where.error("needs 'id = <policy id>'")
    return jsonOutput(await stateProof(node.ledger, id))
  })

  executor.register('blockchain prove consistency', (cmd, ctx) => {
    const where = new WhereArgs(cmd, ctx)
    const first = where.int('first', { min: 0 })
    if (first === undefined) throw where.error("needs 'first = <tree size>'")
    return jsonOutput(consistencyProof(node.ledger, first, where.int('second', { min: 1 })))
  })
}
