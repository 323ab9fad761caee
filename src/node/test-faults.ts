import { randomBytes } from 'node:crypto'
import type { Logger } from '../base/logger.js'
import { entryText } from '../ledger/entry.js'
import { canonicalJson } from '../policies/canonical.js'
import { Ed25519Signer } from '../policies/keys.js'
import { policyBody } from '../policies/policy.js'
import { preparePolicy } from '../policies/prepare.js'
import type { LightRequest, LightResponse } from '../protocols/light/index.js'

/**
 * Faults for tests of what a node must refuse from a malicious peer, honoured only when the
 * process environment says LEDGERMESH_TEST_FAULTS=1 (never read from an env file):
 *
 * - LEDGERMESH_FAULT_LIGHT=forge-assignment: every light answer of this node carries one
 *   more assignment, for the worker asking, of the first profile the answer holds: a well-formed
 *   policy its author (a key made up here) signed, placed as the entry at the checkpoint's
 *   size with the audit path of a real entry. A light worker must refuse the answer.
 * - LEDGERMESH_FAULT_LIGHT=withhold: every light answer of this node holds no policy (each id
 *   asked for is called missing). A light worker must get them from a master instead.
 */
export function lightFaults (log: Logger): ((request: LightRequest, response: LightResponse) => LightResponse) | undefined {
  if (process.env.LEDGERMESH_TEST_FAULTS !== '1') return undefined
  const fault = process.env.LEDGERMESH_FAULT_LIGHT
  if (fault === 'withhold') {
    log.warn('LEDGERMESH_TEST_FAULTS=1: this node withholds every policy from its light answers (a test of light workers)')
    return (request, response) => response.ok ? { ...response, entries: [], missing: [...new Set([...request.ids, ...response.missing])] } : response
  }
  if (fault !== 'forge-assignment') return undefined
  log.warn('LEDGERMESH_TEST_FAULTS=1: this node forges an assignment in its light answers (a test of light workers)')
  const forger = new Ed25519Signer(randomBytes(32))
  return (request, response) => {
    if (!response.ok) return response
    const policyOf = (type: string): Record<string, unknown> | undefined => {
      const text = response.entries.map(e => new RegExp(`"policy":(\\{"${type}":.*\\})\\}$`).exec(e.entry)?.[1]).find(found => found !== undefined)
      return text === undefined ? undefined : policyBody(JSON.parse(text))
    }
    const body = policyOf('profile') ?? { name: 'forged', kind: 'forged', subaccount: 'forged', id: '0'.repeat(64) }
    const worker = request.worker !== '' ? request.worker : String(policyOf('assignment')?.worker ?? policyOf('worker')?.name ?? 'forged')
    const size = Number(response.checkpoint.split('\n')[1])
    const forged = preparePolicy({ assignment: { profile: 'forged-' + String(body.name), profile_id: String(body.id), kind: String(body.kind), subaccount: String(body.subaccount), slave: 'forged', worker, epoch: size } }, forger)
    const entry = entryText('f'.repeat(64), size, 'put', canonicalJson(forged))
    return { ...response, entries: [...response.entries, { entry, proof: response.entries[0]?.proof ?? [] }] }
  }
}
