import { LedgerMeshError } from '../../base/errors.js'
import { runQuery } from '../bring.js'
import { checkPolicyShape, parsePolicyJson } from '../../policies/validate.js'
import { prepareTombstone } from '../../policies/prepare.js'
import { prepareSealed, signUnlessSigned } from '../../policies/sign-input.js'
import type { Policy } from '../../policies/policy.js'
import type { ValueNode } from '../ast.js'
import type { ExecContext, Executor } from '../executor.js'
import { jsonOutput, textOutput } from '../output.js'
import type { NodePort } from '../port.js'
import { WhereArgs } from '../where.js'
import { registerCreatePolicy } from './create-policy.js'
import { registerProofCommands } from './proofs.js'

/** A policy from a variable's value: a JSON object, or JSON text. */
function policyFrom (value: unknown): Policy {
  return typeof value === 'string' ? parsePolicyJson(value) : checkPolicyShape(value)
}

/** `blockchain ...`: prepare, insert, query, prove and delete policies; `create policy`, which makes one; `get checkpoint`. */
export function registerLedgerCommands (executor: Executor, node: NodePort): void {
  /** what a profile's plain settings are sealed to before this node signs it (docs/workers-and-allocation.md, "Sealed settings") */
  const seal = () => ({ masterKeys: node.hasLedger ? node.ledger.masterKeys : [] })

  executor.register('blockchain prepare policy', (cmd, ctx) => {
    const target: ValueNode = cmd.value!
    const prepared = prepareSealed(policyFrom(ctx.executor.resolve(target, ctx.vars)), node.signer, seal())
    // AnyLog updates the variable in place: `blockchain prepare policy !new_policy`.
    if (target.kind === 'var') ctx.vars.set(target.name, prepared)
    return jsonOutput(prepared)
  })

  executor.register('blockchain insert', async (cmd, ctx) => {
    const where = new WhereArgs(cmd, ctx)
    if (!where.has('policy')) throw where.error("needs 'policy=!<variable>'")
    const policy = signUnlessSigned(policyFrom(where.value('policy')), node.signer, seal())
    const result = await node.insert({ op: 'put', policy }, { local: where.bool('local') ?? false, master: where.text('master') })
    return textOutput(`Policy ${result.id} inserted (${result.ledger}${result.seq !== undefined ? `, seq ${result.seq}` : ''})`, result)
  })

  executor.register('blockchain get', (cmd, ctx: ExecContext) => {
    return runQuery(node.ledger.state, cmd.query!, v => ctx.executor.resolve(v, ctx.vars))
  })

  executor.register('blockchain delete policy', async (cmd, ctx) => {
    const where = new WhereArgs(cmd, ctx)
    const id = where.requireText('id').toLowerCase()
    if (!node.ledger.state.has(id)) {
      throw new LedgerMeshError('not_found', `blockchain delete policy: no policy with id ${id} in the ledger`, { id })
    }
    const result = await node.insert({ op: 'delete', policy: prepareTombstone(id, node.signer) }, { local: false })
    return textOutput(`Policy ${id} deleted (seq ${result.seq})`, { ...result, deleted: id })
  })

  registerCreatePolicy(executor, node)
  registerProofCommands(executor, node)
}
