import { LedgerMeshError } from '../../base/errors.js'
import type { Executor } from '../executor.js'
import { jsonOutput, textOutput } from '../output.js'
import type { NodePort } from '../port.js'
import { profilesView } from '../profiles-view.js'
import { WhereArgs, formatJson } from '../where.js'


/** The workers-and-allocation commands: run allocator/operator, get profiles, drain. */
export function registerProfileCommands (executor: Executor, node: NodePort): void {
  executor.register('run allocator', async () => {
    const allocator = await node.startAllocator()
    return textOutput(`Allocator running (${allocator.details ?? ''})`)
  })

  executor.register('run operator', async () => {
    const operator = await node.startOperator()
    return textOutput(`Operator running for worker ${operator.worker} (kinds: ${operator.kinds.join(', ') || 'none'})`)
  })

  executor.register('get profiles', (cmd, ctx) => {
    const view = profilesView(node)
    return formatJson(new WhereArgs(cmd, ctx)) ? jsonOutput(view.json) : textOutput(view.text, view.json)
  })

  const setDraining = async (command: string, draining: boolean): Promise<void> => {
    if (!await node.setDraining(draining)) throw new LedgerMeshError('bad_command', `${command}: this node runs no operator (only workers drain)`)
  }
  executor.register('worker drain', async () => {
    await setDraining('worker drain', true)
    return textOutput(`Worker ${node.name} draining: its profiles move to other workers (see get profiles)`)
  })
  executor.register('worker resume', async () => {
    await setDraining('worker resume', false)
    return textOutput(`Worker ${node.name} takes profiles again`)
  })
}
