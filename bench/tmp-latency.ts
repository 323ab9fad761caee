import { Client } from 'undici'
import { startNode } from '../test/helpers/node-process.js'
import { withCleanup } from './lib/harness.js'
import { INSERT_COMMAND } from './rest.js'
await withCleanup(async t => {
  const master = await startNode(t, { type: 'master', name: 'lat-master', env: { LOG_LEVEL: process.env.LL ?? 'info' } })
  t.teardown(async () => { await master.stop() })
  const client = new Client(master.url, { pipelining: 1 })
  const run = async (label: string, req: (i: number) => { method: 'GET' | 'POST', command: string, body?: string }) => {
    const lat: number[] = []
    for (let i = 0; i < 2500; i++) {
      const { method, command, body } = req(i)
      const s = performance.now()
      const r = await client.request({ path: '/', method, headers: { command, 'user-agent': 'AnyLog/1.23', ...(body ? { 'content-type': 'text/plain' } : {}) }, body })
      await r.body.text()
      if (i >= 500) lat.push(performance.now() - s)
    }
    lat.sort((a, b) => a - b)
    console.log(label, 'p50', lat[1000].toFixed(3), 'p99', lat[1980].toFixed(3), 'per_s', (2000 / (lat.reduce((a, b) => a + b, 0) / 1000)).toFixed(0))
  }
  await run('get status', () => ({ method: 'GET', command: 'get status' }))
  await run('blockchain get count', () => ({ method: 'GET', command: 'blockchain get probe bring.count' }))
  await run('insert', i => ({ method: 'POST', command: INSERT_COMMAND, body: `<p={"probe": {"name": "x-${i}", "group": "bench"}}>` }))
  await client.close()
})
process.exit(0)
