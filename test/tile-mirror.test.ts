import t from 'tap'
import { spawnSync } from 'node:child_process'
import { cp, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CLI, POLYFILL, ROOT, startNode, type NodeProcess } from './helpers/node-process.js'
import { getJson, insert } from './helpers/fleet.js'
import { waitFor } from './helpers/net.js'
import { serveDirectory } from './helpers/static-server.js'
import { tmpDir } from './helpers/tmp.js'

/**
 * A replica catches up from a static tile mirror when no master answers: the master's log is
 * exported with `ledgermesh export-tiles` and served by a plain web server (Python's
 * http.server), the master stops, and a replica started with TILES_MIRROR reaches the master's
 * last head, checkpoint and all. A mirror with one entry changed is refused, and nothing of it
 * is applied.
 */
const dir = await tmpDir(t, 'lm-mirror-')

const head = async (node: NodeProcess): Promise<{ seq: number, signed: { root: string } | null }> => await getJson(node, '/v1/ledger/head')

t.test('a replica catches up from a static tile mirror when its master is gone, and refuses a tampered one', async t => {
  const master = await startNode(t, { type: 'master', name: 'mirror-master' })
  const replicaEnv = { LEDGER_CONN: master.ledgerConn, BLOCKCHAIN_SYNC: '1 second' }
  const honest = await startNode(t, { type: 'member', name: 'mirror-honest', env: replicaEnv })
  const misled = await startNode(t, { type: 'member', name: 'mirror-misled', env: replicaEnv })
  for (let i = 0; i < 20; i++) await insert(master, { probe: { name: `before-${i}` } })
  const early = (await head(master)).seq
  await waitFor('both replicas at the master\'s head', async () => (await head(honest)).seq === early && (await head(misled)).seq === early ? true : undefined)
  await honest.stop()
  await misled.stop()

  for (let i = 0; i < 300; i++) await insert(master, { probe: { name: `after-${i}` } })
  const last = await head(master)
  const mirrorDir = join(dir, 'mirror')
  const exported = spawnSync(process.execPath, ['--import', POLYFILL, CLI, 'export-tiles', mirrorDir, '--node', master.url], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
  t.equal(exported.status, 0, exported.stderr)
  await master.stop()

  // a copy of the mirror with one byte of one entry changed (its bundle's length stays right)
  const tamperedDir = join(dir, 'tampered')
  await cp(mirrorDir, tamperedDir, { recursive: true })
  const bundle = join(tamperedDir, 'tile', 'entries', '001.p', String(last.seq - 256))
  const bytes = await readFile(bundle)
  const at = bytes.indexOf('after-250')
  t.ok(at > 0, 'the entry to change is in the last bundle')
  bytes[at + 6] = '9'.charCodeAt(0)
  await writeFile(bundle, bytes)

  const [mirror, tampered] = [await serveDirectory(t, mirrorDir), await serveDirectory(t, tamperedDir)]
  const restarted = await startNode(t, { type: 'member', name: 'mirror-honest', home: honest.home, tcpPort: honest.tcpPort, restPort: honest.restPort, join: false, env: { ...replicaEnv, TILES_MIRROR: mirror } })
  await waitFor('the replica caught up from the mirror', async () => (await head(restarted)).seq === last.seq ? true : undefined, { timeoutMs: 60_000 })
  t.equal((await head(restarted)).signed?.root, last.signed?.root, 'it holds the master\'s last checkpoint')
  t.match(restarted.logs(), /caught up from the tile mirror/)
  t.equal((await restarted.ok('blockchain get probe where name = after-299 bring.count')).text.trim(), '1', 'the last policy is there')

  const fooled = await startNode(t, { type: 'member', name: 'mirror-misled', home: misled.home, tcpPort: misled.tcpPort, restPort: misled.restPort, join: false, env: { ...replicaEnv, TILES_MIRROR: tampered } })
  await waitFor('the tampered mirror refused', () => /catching up from the tile mirror failed/.test(fooled.logs()) ? true : undefined, { timeoutMs: 60_000 })
  t.match(fooled.logs(), /sync batch rejected: entry \d+ links to prev_hash|hash does not match its content|Merkle root/, 'refused: the changed entry breaks the chain the signed root covers')
  t.equal((await head(fooled)).seq, early, 'nothing of the tampered mirror was applied')
})
