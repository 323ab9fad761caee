import { httpJson } from './http.js'
import type { NodeProcess } from './node-process.js'

/** A node's head seq (GET /v1/ledger/head), or undefined when it does not answer in time. */
export async function headSeq (node: NodeProcess, timeoutMs = 1000): Promise<number | undefined> {
  if (node.exitCode !== undefined) return undefined
  try {
    return (await httpJson(`${node.url}/v1/ledger/head`, timeoutMs) as { seq: number }).seq
  } catch { return undefined }
}

/**
 * Polls the heads of `nodes()` (asked again each round: nodes may come and go) until stopped;
 * `backwards` lists any head that went down.
 */
export function recordHeads (nodes: () => NodeProcess[], everyMs: number): { stop: () => Promise<void>, backwards: string[], samples: () => number } {
  const last = new Map<string, number>()
  const backwards: string[] = []
  let samples = 0
  let running = true
  const loop = (async () => {
    while (running) {
      await Promise.all(nodes().map(async node => {
        const seq = await headSeq(node)
        if (seq === undefined) return
        samples++
        const before = last.get(node.name) ?? 0
        if (seq < before) backwards.push(`${node.name}: ${before} → ${seq}`)
        last.set(node.name, Math.max(before, seq))
      }))
      await new Promise(resolve => setTimeout(resolve, everyMs))
    }
  })()
  return { stop: async () => { running = false; await loop }, backwards, samples: () => samples }
}
