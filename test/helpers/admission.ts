import { httpRequest } from './http.js'
import type { NodeProcess } from './node-process.js'

/** Helpers of the admission tests: what a node says of itself, and what its metrics count. */

export async function statusOf (node: NodeProcess): Promise<any> {
  return (await node.ok('get status where format=json')).json
}

/** The value of one series of a node's /metrics (0 when absent). */
export async function metric (node: NodeProcess, name: string, labels: string): Promise<number> {
  const { text } = await httpRequest(`${node.url}/metrics`, { timeoutMs: 10_000 })
  const line = text.split('\n').find(l => l.startsWith(`${name}{`) && l.includes(labels))
  return line === undefined ? 0 : Number(line.split(' ').at(-1))
}

/** Whether the node's replica lacks the master's declaration: it is not (yet) syncing. */
export async function notSyncing (node: NodeProcess): Promise<boolean> {
  return (await node.ok('blockchain get master bring.count')).text === '0'
}
