import { useState } from 'preact/hooks'
import { drain, resume, type Network } from './api.js'

const ago = (iso: string | null): string => {
  if (iso === null) return ''
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))
  return seconds < 60 ? `${seconds} s ago` : `${Math.round(seconds / 60)} min ago`
}

/** Every node the ledger declares, by role, with its head, lag and lease as this node knows them. */
export function NetworkTable ({ network }: { network: Network }) {
  const [outcome, setOutcome] = useState<{ ok: boolean, message: string } | undefined>()
  const act = async (what: 'drain' | 'resume', node: string): Promise<void> => {
    try {
      await (what === 'drain' ? drain(node) : resume(node))
      setOutcome({ ok: true, message: `${what === 'drain' ? 'drain' : 'resume'} of ${node} written to the ledger` })
    } catch (err) {
      setOutcome({ ok: false, message: `${what} ${node}: ${err instanceof Error ? err.message : String(err)}` })
    }
  }
  return (
    <section id="network" aria-labelledby="network-title">
      <h2 id="network-title">Network ({network.nodes.length} nodes)</h2>
      <div class="table">
        <table>
          <thead><tr><th scope="col">Node</th><th scope="col">Role</th><th scope="col">Address</th><th scope="col">Head</th><th scope="col">Lag</th><th scope="col">Last sync</th><th scope="col">Lease</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
          <tbody>
            {network.nodes.map(n => (
              <tr key={`${n.type}/${n.name}`} data-node={n.name}>
                <th scope="row">{n.self || n.rest === null ? n.name : <a href={`http://${n.rest}/ui/`} title={`${n.name}'s own console: its processes, restarts and uptime`}>{n.name}</a>}{n.self ? <span class="muted"> (this node)</span> : null}</th>
                <td>{n.type}</td>
                <td>{n.address ?? ''}</td>
                <td data-field="head">{n.seq ?? ''}</td>
                <td>{n.lag ?? ''}</td>
                <td>{n.self ? '' : ago(n.last_sync)}{n.watching === true ? ' · watching' : ''}</td>
                <td>{n.lease === null ? '' : <span class={`state-${n.lease.state}`}>{n.lease.state}</span>}{n.lease?.draining === true ? <span class="draining"> · draining</span> : null}</td>
                <td>{n.lease === null
                  ? null
                  : n.lease.draining
                    ? <button type="button" data-action="resume" onClick={() => { void act('resume', n.name) }}>Resume<span class="sr-only"> {n.name}</span></button>
                    : <button type="button" data-action="drain" onClick={() => { void act('drain', n.name) }}>Drain<span class="sr-only"> {n.name}</span></button>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {outcome !== undefined ? <p role={outcome.ok ? 'status' : 'alert'} data-field="network-outcome" class={outcome.ok ? 'state-live' : 'error'}>{outcome.message}</p> : null}
    </section>
  )
}
