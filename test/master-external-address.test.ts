import t from 'tap'
import { createTestDatabase } from './helpers/pg.js'
import { activeMaster, masterRole, startMasters } from './helpers/masters.js'
import { insert } from './helpers/fleet.js'
import { waitFor } from './helpers/net.js'

// Masters behind a NAT or a relay listen on INTERNAL_IP and are reached at EXTERNAL_IP. The
// writer lease row tells standbys where to forward, so it holds the external address (the WAN
// harness found a standby forwarding to the writer's internal address, which it cannot reach).

t.test('the writer lease shows the active master\'s EXTERNAL_IP, and a standby forwards there', async t => {
  const db = await createTestDatabase(t)
  // listening on every interface, published as 127.0.0.2: another loopback address of this host
  const [a, b] = await startMasters(t, db, 2, { INTERNAL_IP: '127.0.0.1', EXTERNAL_IP: '127.0.0.2', TCP_BIND: 'false' })
  const active = await activeMaster([a, b])
  const standby = active === a ? b : a
  const role = await waitFor('the standby to see the writer', async () => {
    const r = await masterRole(standby)
    return r.role === 'standby' && r.active_master !== null ? r : undefined
  })
  t.equal(role.active_master, `127.0.0.2:${active.tcpPort}`, 'the lease names the external address')
  t.ok(role.masters.every(m => (m as { address?: string }).address?.startsWith('127.0.0.2:')), 'both registered with their external addresses')
  const { seq } = await insert(standby, { probe: { name: 'through-the-standby' } })
  t.ok(seq > 0, 'an insert sent to the standby is ordered by the active master')
})
