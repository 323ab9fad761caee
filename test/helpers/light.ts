import { getJson } from './fleet.js'

/** A light worker's env (LEDGER_MODE=light), and what its status shows of the policies it holds with proofs. */
export const LIGHT = { LEDGER_MODE: 'light' }

export interface LightStatus { policies: number, checkpoint_size: number, complete: boolean, root_key: string | null, refused: number, last_refusal: { source: string, reason: string } | null }

export async function lightOf (worker: Parameters<typeof getJson>[0]): Promise<LightStatus> {
  const status = await getJson(worker, '/v1/status')
  if (status.sync?.light === undefined) throw new Error(`${worker.name} shows no light state in its status: ${JSON.stringify(status.sync)}`)
  return status.sync.light as LightStatus
}
