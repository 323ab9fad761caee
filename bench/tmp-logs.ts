import { startNode, type NodeProcess } from '../test/helpers/node-process.js'
import { withCleanup } from './lib/harness.js'
await withCleanup(async t => {
  const master = await startNode(t, { type: 'master', name: 'l-master', env: { LOG_LEVEL: 'info' } })
  t.teardown(async () => { await master.stop() })
  const replicas: NodeProcess[] = []
  for (let i = 0; i < 3; i++) replicas.push(await startNode(t, { type: 'member', name: `l-r${i}`, env: { LEDGER_CONN: master.ledgerConn, LOG_LEVEL: 'info', BLOCKCHAIN_SYNC: '30 second' } }))
  for (const r of replicas) t.teardown(async () => { await r.stop() })
  await new Promise(resolve => setTimeout(resolve, 3000))
  const m0 = master.stderr.length; const r0 = replicas[0].stderr.length
  const mo0 = (master as any).stdout?.length ?? 0
  for (let i = 0; i < 20; i++) {
    await master.ok('blockchain insert where policy=!p', { method: 'POST', body: `<p = {"probe": {"name": "s${i}-${Date.now()}"}}>` })
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  const lines = master.stderr.slice(m0)
  const msgs = new Map<string, number>()
  for (const l of lines) { try { const m = JSON.parse(l).msg; msgs.set(m, (msgs.get(m) ?? 0) + 1) } catch { msgs.set('(non-json)', (msgs.get('(non-json)') ?? 0) + 1) } }
  console.log('master lines', lines.length, 'bytes', lines.join('\n').length, [...msgs].sort((a, b) => b[1] - a[1]).slice(0, 10))
  const rl = replicas[0].stderr.slice(r0)
  const rm = new Map<string, number>()
  for (const l of rl) { try { const m = JSON.parse(l).msg; rm.set(m, (rm.get(m) ?? 0) + 1) } catch { rm.set('(non-json)', (rm.get('(non-json)') ?? 0) + 1) } }
  console.log('replica lines', rl.length, [...rm].sort((a, b) => b[1] - a[1]).slice(0, 10))
  console.log('stdout keys', Object.keys(master))
})
process.exit(0)
