import { LedgerMeshError } from '../../base/errors.js'
import type { Executor } from '../executor.js'
import { jsonOutput, textOutput } from '../output.js'
import type { NodePort } from '../port.js'
import { profilesView } from '../profiles-view.js'
import { WhereArgs, formatJson } from '../where.js'
import { dataLayerError } from '../data-layer.js'

/** The workers-and-allocation commands: run allocator/operator, get profiles, drain. */
export function registerProfileCommands (executor: Executor, node: NodePort): void {
  executor.register('run allocator', async () => {
    const allocator = await node.startAllocator()
    return textOutput(`Allocator running (${allocator.details ?? ''})`)
  })

  executor.register('run operator', async (cmd) => {
    // AnyLog's `run operator where ...` is its data-ingest service, not this worker loop
    if (cmd.where.length > 0) throw dataLayerError('run operator where ...', 'is AnyLog\'s data-ingest operator, which ledgermesh does not include (its `run operator`, without arguments, runs a worker\'s or slave\'s profiles)')
    const operator = await node.startOperator()
    return textOutput(`Operator running for ${operator.role} ${operator.worker} (kinds: ${operator.kinds.join(', ') || 'none'})`)
  })

  executor.register('get profiles', (cmd, ctx) => {
    const view = profilesView(node)
    return formatJson(new WhereArgs(cmd, ctx)) ? jsonOutput(view.json) : textOutput(view.text, view.json)
  })

  const setDraining = async (command: string, draining: boolean): Promise<void> => {
    if (!await node.setDraining(draining)) throw new LedgerMeshError('bad_command', `${command}: this node runs no operator (only workers and slaves drain)`)
  }
  // on a slave, `worker drain` drains the slave (one command for both); `slave drain` says what it does
  const drained = (): string => node.role === 'slave'
    ? `Slave ${node.name} draining: its sub-accounts (and their profiles) move to other slaves (see get profiles)`
    : `Worker ${node.name} draining: its profiles move to other workers (see get profiles)`
  const resumed = (): string => node.role === 'slave' ? `Slave ${node.name} takes sub-accounts again` : `Worker ${node.name} takes profiles again`
  for (const prefix of ['worker', 'slave']) {
    executor.register(`${prefix} drain`, async () => {
      await setDraining(`${prefix} drain`, true)
      return textOutput(drained())
    })
    executor.register(`${prefix} resume`, async () => {
      await setDraining(`${prefix} resume`, false)
      return textOutput(resumed())
    })
  }
}
