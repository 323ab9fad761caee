import type { PlacedProfile, Profiles, WorkerProcess } from './api.js'

const uptime = (seconds: number | null): string => seconds === null ? '' : seconds < 120 ? `${seconds} s` : seconds < 7200 ? `${Math.round(seconds / 60)} min` : `${Math.round(seconds / 3600)} h`

/** The master's placement (profiles by worker), or the processes a worker runs. */
export function Allocation ({ profiles }: { profiles: Profiles | null }) {
  if (profiles === null) return null
  const rows = profiles.profiles
  const placed = rows.filter((p): p is PlacedProfile => 'subaccount' in p).sort((a, b) => (a.worker ?? '~').localeCompare(b.worker ?? '~') || a.name.localeCompare(b.name))
  const running = rows.filter((p): p is WorkerProcess => 'state' in p)
  return (
    <section id="allocation" aria-labelledby="allocation-title">
      <h2 id="allocation-title">Allocation ({rows.length} profiles)</h2>
      {(profiles.subaccounts ?? []).length > 0
        ? (
          <div class="table">
            <table>
              <caption class="muted">Sub-accounts by slave</caption>
              <thead><tr><th scope="col">Sub-account</th><th scope="col">Slave</th><th scope="col">Slave lease</th><th scope="col">Status</th></tr></thead>
              <tbody>{[...profiles.subaccounts!].sort((a, b) => (a.slave ?? '~').localeCompare(b.slave ?? '~') || a.name.localeCompare(b.name)).map(s => (
                <tr key={s.name} data-subaccount={s.name}><th scope="row">{s.name}</th><td>{s.slave ?? ''}</td><td>{s.lease ?? ''}{s.draining ? <span class="draining"> · draining</span> : null}</td><td>{s.status}</td></tr>
              ))}</tbody>
            </table>
          </div>)
        : null}
      <div class="table">
        {placed.length > 0
          ? (
            <table>
              <caption class="muted">Profiles by worker</caption>
              <thead><tr><th scope="col">Profile</th><th scope="col">Kind</th><th scope="col">Sub-account</th><th scope="col">Slave</th><th scope="col">Worker</th><th scope="col">Status</th><th scope="col">Process</th></tr></thead>
              <tbody>{placed.map(p => (
                <tr key={p.name} data-profile={p.name}><th scope="row">{p.name}</th><td>{p.kind}</td><td>{p.subaccount}</td><td>{p.slave ?? ''}</td><td data-field="worker">{p.worker ?? ''}</td><td class={`state-${p.status.split(':')[0]}`}>{p.status}</td><td data-field="process">{p.process ?? ''}</td></tr>
              ))}</tbody>
            </table>)
          : (
            <table>
              <thead><tr><th scope="col">Profile</th><th scope="col">Kind</th><th scope="col">State</th><th scope="col">PID</th><th scope="col">Restarts</th><th scope="col">Uptime</th></tr></thead>
              <tbody>{running.map(p => (
                <tr key={p.name} data-profile={p.name}><th scope="row">{p.name}</th><td>{p.kind}</td><td class={`state-${p.state}`}>{p.state}</td><td>{p.pid ?? ''}</td><td>{p.restarts}</td><td data-field="uptime">{uptime(p.uptime_seconds)}</td></tr>
              ))}</tbody>
            </table>)}
      </div>
    </section>
  )
}
