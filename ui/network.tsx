import type { Network } from './api.js'

const ago = (iso: string | null): string => {
  if (iso === null) return ''
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))
  return seconds < 60 ? `${seconds} s ago` : `${Math.round(seconds / 60)} min ago`
}

/** Every node the ledger declares, by role, with its head, lag and lease as this node knows them. */
export function NetworkTable ({ network }: { network: Network }) {
  return (
    <section id="network" aria-labelledby="network-title">
      <h2 id="network-title">Network ({network.nodes.length} nodes)</h2>
      <div class="table">
        <table>
          <thead><tr><th scope="col">Node</th><th scope="col">Role</th><th scope="col">Address</th><th scope="col">Head</th><th scope="col">Lag</th><th scope="col">Last sync</th><th scope="col">Lease</th></tr></thead>
          <tbody>
            {network.nodes.map(n => (
              <tr key={`${n.type}/${n.name}`} data-node={n.name}>
                <th scope="row">{n.name}{n.self ? <span class="muted"> (this node)</span> : null}</th>
                <td>{n.type}</td>
                <td>{n.address ?? ''}</td>
                <td data-field="head">{n.seq ?? ''}</td>
                <td>{n.lag ?? ''}</td>
                <td>{n.self ? '' : ago(n.last_sync)}{n.watching === true ? ' · watching' : ''}</td>
                <td>{n.lease === null ? '' : <span class={`state-${n.lease.state}`}>{n.lease.state}</span>}{n.lease?.draining === true ? <span class="draining"> · draining</span> : null}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  )
}
