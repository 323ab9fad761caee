import type { PrimaryChange } from './pg-primary.js'

/**
 * What the primary says of its replication: whether a commit waits for a standby (synchronous
 * replication) before PostgreSQL answers it. Only then does an acknowledged insert survive the
 * primary's loss: Patroni's `synchronous_mode` and pg_auto_failover's `number_sync_standbys`
 * set `synchronous_standby_names` for that. Reading the standbys' `sync_state` needs a superuser
 * or the `pg_monitor` role.
 */

/** One standby as pg_stat_replication shows it. */
export interface StandbyState {
  name: string
  /** streaming, catchup, backup... (null when DB_USER may not see it) */
  state: string | null
  /** sync, quorum, potential or async */
  sync_state: string | null
  /** how far behind its replay is, in ms (null when idle or hidden) */
  replay_lag_ms: number | null
}

export interface ReplicationState {
  synchronous_commit: string
  synchronous_standby_names: string
  standbys: StandbyState[]
  /** the standbys that confirm commits now (sync_state sync or quorum, streaming) */
  synchronous_standbys: number
  /** why a commit acknowledged now could be lost with the primary; absent when none */
  problem?: string
}

/** One statement, run on the primary. */
export const REPLICATION_SQL = `SELECT current_setting('synchronous_commit') AS synchronous_commit,
  current_setting('synchronous_standby_names') AS synchronous_standby_names,
  coalesce((SELECT json_agg(json_build_object('name', application_name, 'state', state, 'sync_state', sync_state,
    'replay_lag_ms', round(extract(epoch FROM replay_lag) * 1000)) ORDER BY application_name) FROM pg_stat_replication), '[]') AS standbys`

/** synchronous_commit values under which a commit waits for the synchronous standbys. */
const WAITING_COMMITS = ['on', 'remote_write', 'remote_apply']
/** A standby's sync_state while it confirms commits (one named, or one of a quorum). */
const CONFIRMING = ['sync', 'quorum']
const sqlList = (values: string[]): string => values.map(v => `'${v}'`).join(', ')

/**
 * In a commit's first message when LEDGER_REQUIRE_SYNC is set: one row, `sync`, true only
 * while this commit will wait for a synchronous standby that is streaming now.
 */
export const SYNC_CHECK_SQL = `SELECT current_setting('synchronous_commit') IN (${sqlList(WAITING_COMMITS)})
  AND current_setting('synchronous_standby_names') <> ''
  AND EXISTS (SELECT 1 FROM pg_stat_replication WHERE sync_state IN (${sqlList(CONFIRMING)}) AND state = 'streaming') AS sync`

export function replicationState (row: { synchronous_commit: string, synchronous_standby_names: string, standbys: StandbyState[] }): ReplicationState {
  const standbys = row.standbys.map(s => ({ ...s, replay_lag_ms: s.replay_lag_ms === null ? null : Number(s.replay_lag_ms) }))
  const synchronous = standbys.filter(s => s.sync_state !== null && CONFIRMING.includes(s.sync_state) && s.state === 'streaming').length
  const state: ReplicationState = { synchronous_commit: row.synchronous_commit, synchronous_standby_names: row.synchronous_standby_names, standbys, synchronous_standbys: synchronous }
  const problem = replicationProblem(state)
  return problem === undefined ? state : { ...state, problem }
}

function replicationProblem (state: ReplicationState): string | undefined {
  const alone = 'an insert is acknowledged while only the primary holds it, and is lost if the primary is'
  if (!WAITING_COMMITS.includes(state.synchronous_commit)) return `synchronous_commit is ${state.synchronous_commit}: ${alone}`
  if (state.synchronous_standby_names.trim() === '') {
    const connected = state.standbys.length > 0 ? '' : ' (no standby is connected)'
    return `no synchronous standby: synchronous_standby_names is empty${connected}, so ${alone}`
  }
  if (state.standbys.length > 0 && state.standbys.every(s => s.sync_state === null)) {
    return 'the standbys\' replication state is hidden from DB_USER: grant it the pg_monitor role (or use a superuser) so the master can check for a synchronous standby'
  }
  if (state.synchronous_standbys === 0) {
    return `no synchronous standby is streaming (synchronous_standby_names = '${state.synchronous_standby_names}'): commits wait until one is, or until the cluster manager turns synchronous replication off`
  }
  return undefined
}

/** What `get status`, /health and /v1/network show of a master's PostgreSQL. */
export interface DatabaseSummary {
  location: string
  hosts: string[]
  /** the host this master writes to now (null while it looks for one) */
  primary: string | null
  require_sync: boolean
  /** as the primary last said (null before the first answer) */
  replication: ReplicationState | null
  checked_at: string | null
  /** the last read's failure, while the database does not answer */
  error?: string
  /** the failovers this master rode through, oldest first */
  failovers: readonly PrimaryChange[]
}
