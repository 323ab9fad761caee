import type { Network } from './api.js'

/**
 * A master on PostgreSQL: the servers it names, the primary it writes to, whether a commit
 * waits for a synchronous standby (and why not, when it does not), and the failovers it rode
 * through. Absent on other nodes.
 */
export function Database ({ database }: { database: NonNullable<Network['database']> }) {
  const replication = database.replication
  const problem = replication?.problem
  return (
    <section id="database" aria-labelledby="database-title">
      <h2 id="database-title">PostgreSQL</h2>
      <dl class="facts">
        <dt>Servers</dt><dd data-field="db-hosts">{database.hosts.join(', ')}</dd>
        <dt>Primary</dt><dd data-field="db-primary">{database.primary ?? 'none found yet'}</dd>
        <dt>Synchronous standbys</dt>
        <dd data-field="db-replication" class={problem === undefined ? 'state-live' : 'error'}>
          {replication === null ? 'not read yet' : `${replication.synchronous_standbys}${problem === undefined ? '' : ` · ${problem}`}`}
        </dd>
        {replication?.standbys.map(s => [<dt key={`${s.name}-t`}>{s.name}</dt>, <dd key={`${s.name}-d`}>{s.state ?? '?'} · {s.sync_state ?? '?'}{s.replay_lag_ms === null ? '' : ` · lag ${s.replay_lag_ms} ms`}</dd>])}
        <dt>Failovers</dt>
        <dd data-field="db-failovers">{database.failovers.length === 0 ? 'none' : database.failovers.map(f => `${f.from} → ${f.to} at ${new Date(f.at).toLocaleTimeString()}`).join('; ')}</dd>
      </dl>
      {database.error !== undefined ? <p role="alert" class="error">{database.error}</p> : null}
    </section>
  )
}
