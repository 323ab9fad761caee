import type { AdmissionView } from '../commands/port.js'
import type { Logger } from '../base/logger.js'
import type { AdmissionState } from '../services/replica-sync.js'

/**
 * What a node whose master does not admit its key says, and where: one line in its log at the
 * first refusal, `admission` in `get status` (and its text form), and the banner of the REPL
 * (`ledgermesh start --repl`, `ledgermesh attach`). This module builds that one text.
 */

/** The two ways into a network that requires admission, for the node with `key`. */
export function waysIn (key: string): string[] {
  return [
    'start the node with JOIN_TOKEN=<token from \'create join token\' on the master> in its env file',
    `run 'admit node where key = ${key}' on the master`
  ]
}

/** `get status`'s admission for the node with `key`, from what its sync knows; undefined before the master answered. */
export function admissionView (key: string, state: AdmissionState | undefined): AdmissionView | undefined {
  if (state === undefined) return undefined
  if (state.admitted) return { admitted: true, key }
  const reason = state.joinError === undefined
    ? `the master at ${state.source} refuses its key (never admitted, or revoked)`
    : `the master at ${state.source} refuses its key, and refused its JOIN_TOKEN: ${state.joinError}`
  const ways = waysIn(key)
  // a node whose token was refused stops at its declaration; one without keeps running
  const after = state.joinError === undefined ? ' Until then it keeps running and retrying: once admitted it syncs at its next try, without a restart.' : ''
  const message = `NOT ADMITTED: this node's key ${key} is not admitted to the network: ${reason}. Two ways in: ${ways[0]}, or ${ways[1]}.${after}`
  return { admitted: false, key, reason, since: state.at.toISOString(), ways_in: ways, message }
}

/** The replicator's onAdmission for a node with `key`: logs the notice when the master refuses it, and when it lets it in after that. */
export function logAdmission (log: Logger, key: () => string): (state: AdmissionState) => void {
  let refused = false
  return state => {
    const view = admissionView(key(), state)
    if (view?.admitted === false) log.warn({ key: view.key, reason: view.reason, ways_in: view.ways_in }, view.message)
    else if (refused) log.info({ key: key() }, 'admitted: the master serves this node\'s key now')
    refused = view?.admitted === false
  }
}
