import t, { type Test } from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { CLI, POLYFILL, ROOT, startNode, type NodeProcess } from './helpers/node-process.js'
import { waitFor } from './helpers/net.js'

/**
 * NETWORK_KEY, with real node processes: nodes with the network's key sync; a node with
 * another key, or none, cannot complete a connection, so its replica never gets the master's
 * policies and the master never gets its declaration, and both sides say why. No log line
 * shows a key.
 */

/** `ledgermesh keygen network [--swarm]`: the keys the nodes use come from the CLI itself. */
function keygen (...args: string[]): string {
  const run = spawnSync(process.execPath, ['--import', POLYFILL, CLI, 'keygen', 'network', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 })
  if (run.status !== 0) throw new Error(`keygen ${args.join(' ')} exited with ${run.status}: ${run.stderr}`)
  return run.stdout
}

const networkKey = keygen()
const otherKey = keygen()
const swarmKey = keygen('--swarm')

t.test('keygen network prints a fresh 32-byte key, in hex or as a swarm key file', async t => {
  t.match(networkKey, /^[0-9a-f]{64}\n$/)
  t.not(networkKey, otherKey, 'two runs, two keys')
  t.match(swarmKey, /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\n$/)
})

const hex = networkKey.trim()
const otherHex = otherKey.trim()
// The swarm-format file holds the network's key, so a node reading it must be able to talk to
// the others: that shows both file formats decode to the same key.
const keys = mkdtempSync(join(tmpdir(), 'lm-pnet-keys-'))
t.teardown(() => rmSync(keys, { recursive: true, force: true }))
writeFileSync(join(keys, 'network.hex'), networkKey, { mode: 0o600 })
writeFileSync(join(keys, 'swarm.key'), swarmKey.replace(/[0-9a-f]{64}/, hex), { mode: 0o600 })

/** A node's env file sits in its own temp directory beside `keys`: this path is relative to it. */
const relativeSwarmKey = `../${basename(keys)}/swarm.key`

const HANDSHAKE_WARNING = 'inbound connection failed its handshake'

async function status (node: NodeProcess): Promise<any> {
  return (await node.ok('get status where format=json')).json
}

async function count (node: NodeProcess, what: string): Promise<number> {
  return Number((await node.ok(`blockchain get ${what} bring.count`)).text)
}

async function syncDetails (node: NodeProcess): Promise<string> {
  return (await node.ok('get processes where format=json')).json['Blockchain Sync'].Details as string
}

function assertNoKeyIn (t: Test, node: NodeProcess): void {
  const logs = node.logs()
  for (const key of [hex, otherHex]) {
    for (const piece of [key, key.slice(0, 16), key.slice(-16)]) {
      t.notOk(logs.includes(piece), `${node.name}: no log line shows a network key or a part of one`)
    }
  }
}

t.test('a private network: the same key syncs, another key or none cannot connect', async t => {
  // The master reads its key from a file of 64 hex characters (absolute path).
  const master = await startNode(t, { type: 'master', name: 'pnet-m', env: { NETWORK_KEY: join(keys, 'network.hex') } })
  const conn = { LEDGER_CONN: master.ledgerConn }
  const masterId = (await status(master)).private_network.key_id as string
  t.match(masterId, /^[0-9a-f]{16}$/, 'the master is on a private network; status shows the key\'s fingerprint')

  t.test('members with the same key (given as hex, and as a relative swarm key file) sync', async t => {
    const inline = await startNode(t, { type: 'member', name: 'pnet-hex', env: { ...conn, NETWORK_KEY: hex } })
    const swarm = await startNode(t, { type: 'member', name: 'pnet-swarm', env: { ...conn, NETWORK_KEY: relativeSwarmKey } })
    for (const member of [inline, swarm]) {
      t.equal((await status(member)).private_network.key_id, masterId, `${member.name}: the same key as the master`)
      await waitFor(`${member.name}'s replica to get the master's declaration`, async () => await count(member, 'master') === 1 ? true : undefined, { timeoutMs: 30_000 })
      await waitFor(`the master to get ${member.name}'s declaration`, async () => await count(master, `member where name = ${member.name}`) === 1 ? true : undefined, { timeoutMs: 30_000 })
      t.pass(`${member.name} and the master share the ledger`)
      t.notMatch(await syncDetails(member), /last error/, `${member.name}: sync has no error`)
    }
    t.notOk(master.logs().includes(HANDSHAKE_WARNING), 'no failed handshake so far on the master')
    for (const node of [inline, swarm]) assertNoKeyIn(t, node)
  })

  t.test('a member with another key, and one with none, get nothing and are told why', async t => {
    const wrong = await startNode(t, { type: 'member', name: 'pnet-wrong', join: false, env: { ...conn, NETWORK_KEY: otherHex } })
    const open = await startNode(t, { type: 'member', name: 'pnet-open', join: false, env: conn })
    t.not((await status(wrong)).private_network.key_id, masterId, 'another key, another fingerprint')
    t.equal((await status(open)).private_network, false, 'no key: not on a private network')

    // Each says, in its sync status, that the connection failed and what NETWORK_KEY has to do with it.
    const wrongError = await waitFor('pnet-wrong to report its failed sync', async () => {
      const details = await syncDetails(wrong)
      return /last error: .*this node is on a private network: the peer needs the same NETWORK_KEY/.test(details) ? details : undefined
    }, { timeoutMs: 30_000 })
    t.match(wrongError, /cannot open a sync stream to \/ip4\/127\.0\.0\.1\/tcp\/\d+/, 'pnet-wrong: sync names the master it cannot reach')
    const openError = await waitFor('pnet-open to report its failed sync', async () => {
      const details = await syncDetails(open)
      return /last error: .*if the peer is on a private network, this node needs its NETWORK_KEY/.test(details) ? details : undefined
    }, { timeoutMs: 30_000 })
    t.match(openError, /cannot open a sync stream/, 'pnet-open: sync says it cannot reach the master')
    for (const node of [wrong, open]) {
      const failed = node.stderr.filter(line => line.includes('"msg":"sync pull failed"')).map(line => JSON.parse(line) as { err: string })
      t.ok(failed.length > 0 && failed.every(line => line.err.includes('NETWORK_KEY')), `${node.name}: its log says why sync fails`, { failed })
    }
    // The master says so too: inbound connections that failed their handshake.
    const warning = await waitFor('the master to log the failed handshakes', () =>
      master.stderr.find(line => line.includes(HANDSHAKE_WARNING)), { timeoutMs: 30_000 })
    t.match(JSON.parse(warning), { level: 40, remote: /^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/, failures: Number }, 'a warning naming the remote address')
    t.match(warning, /a peer without its NETWORK_KEY \(or with another one\) cannot connect/)

    // A policy written on the master now reaches a member with the key, proof that sync has
    // run since; the two without it still have nothing from the master, nor it from them.
    const insert = await master.command('blockchain insert where policy = !p and local = true', {
      method: 'POST', body: '<p = {"sensor": {"name": "after-the-bad-members", "company": "test co"}}>'
    })
    t.equal(insert.status, 200, insert.text)
    const keyed = await startNode(t, { type: 'member', name: 'pnet-late', env: { ...conn, NETWORK_KEY: hex } })
    await waitFor('a keyed member to get the new policy', async () => await count(keyed, 'sensor') === 1 ? true : undefined, { timeoutMs: 30_000 })
    for (const node of [wrong, open]) {
      t.equal((await status(node)).ledger.head.seq, 0, `${node.name}: its replica holds nothing from the master`)
      t.equal(await count(node, 'master'), 0, `${node.name}: no master policy`)
      t.equal(await count(node, 'sensor'), 0, `${node.name}: no sensor policy`)
      t.equal(await count(master, `member where name = ${node.name}`), 0, `the master has no declaration from ${node.name}`)
      t.equal((await node.ok(`blockchain get member where name = ${node.name}`)).json[0]?.member?.ledger, 'local', `${node.name}: its own declaration waits in its outbox`)
    }
    t.match(await syncDetails(wrong), /last error: .*NETWORK_KEY/, 'pnet-wrong still cannot sync')
    t.match(await syncDetails(open), /last error: .*NETWORK_KEY/, 'pnet-open still cannot sync')
    for (const node of [master, wrong, open, keyed]) assertNoKeyIn(t, node)
  })
})

t.test('a bad key file stops the node at its config check: exit code 2, the file named, the key not shown', async t => {
  writeFileSync(join(keys, 'short.key'), hex.slice(0, 63) + '\n')
  const node = await startNode(t, { type: 'master', name: 'pnet-bad', env: { NETWORK_KEY: join(keys, 'short.key') }, noWait: true })
  t.equal(await node.waitForExit(20_000), 2)
  const stderr = node.stderr.join('\n')
  t.match(stderr, /ledgermesh: config error: NETWORK_KEY=file ".*short\.key" in .*: expected 64 hex characters.*the key file .*short\.key holds 63 hex characters, not 64/)
  t.notOk(stderr.includes(hex.slice(0, 16)), 'no part of the key is shown')
})
