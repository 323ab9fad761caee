/** SUBACCOUNT_RUNNER_<KIND>: the env key naming the command a slave runs per sub-account for one process kind. */
export function subaccountRunnerKey (kind: string): string {
  return `SUBACCOUNT_RUNNER_${kind.toUpperCase().replace(/-/g, '_')}`
}

/** A comma list of kinds (PROFILE_KINDS, SUBACCOUNT_PROCESSES), trimmed, lower-cased, once each, in order. */
export function kindList (text: string | undefined): string[] {
  return text === undefined ? [] : [...new Set(text.split(',').map(k => k.trim().toLowerCase()))]
}
