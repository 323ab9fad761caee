import t from 'tap'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CLI, POLYFILL, ROOT, startNode } from './helpers/node-process.js'
import { getJson, insert } from './helpers/fleet.js'
import { httpRequest } from './helpers/http.js'
import { waitFor } from './helpers/net.js'
import { tmpDir } from './helpers/tmp.js'
import { Pool } from 'undici'
import { preparedHome } from '../bench/rest.js'
import { parseCheckpoint } from '../src/ledger/tlog/checkpoint.js'
import { SIG_COSIGNATURE_V1, formatVkey, parseNote } from '../src/ledger/tlog/note.js'
import { verifyConsistency, verifyInclusion } from '../src/ledger/tlog/proof.js'
import { leafHash, nodeHash } from '../src/ledger/tlog/rfc6962.js'
import { Ed25519Signer } from '../src/policies/keys.js'

/**
 * The verifiable log from outside, with real node processes: a master and a replica serve the
 * same signed checkpoint; every entry's inclusion proof verifies (here, in an independent
 * implementation, and with `ledgermesh verify`); consistency proofs link older trees to the
 * checkpoint; tampered entries, proofs, sizes and checkpoints fail with a reason.
 */
const ENTRIES = 600
const b = (h: string): Buffer => Buffer.from(h, 'base64')
const dir = await tmpDir(t, 'lm-tlog-')

function verifyCli (...args: string[]): { status: number | null, out: string } {
  const run = spawnSync(process.execPath, ['--import', POLYFILL, CLI, 'verify', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
  return { status: run.status, out: run.stdout + run.stderr }
}

t.test('checkpoints, inclusion and consistency proofs served by a master and a replica', async t => {
  const master = await startNode(t, { type: 'master', name: 'tlog-master' })
  const replica = await startNode(t, { type: 'member', name: 'tlog-replica', env: { LEDGER_CONN: master.ledgerConn, BLOCKCHAIN_SYNC: '1 second' } })
  const ids: string[] = []
  for (let i = 0; i < ENTRIES; i++) ids.push((await insert(master, { probe: { name: `p${i}`, n: i } })).id)
  const masterKey = (await master.ok('get status where format=json')).json.public_key as string
  const head = (await getJson(master, '/v1/ledger/head')) as { seq: number, signed: { seq: number, root: string } }
  await waitFor('the replica at the master\'s head', async () => (await getJson(replica, '/v1/ledger/head')).seq === head.seq ? true : undefined)

  const fetched = await httpRequest(`${master.url}/checkpoint`, { timeoutMs: 10_000 })
  t.equal(fetched.status, 200)
  t.match(String(fetched.headers['content-type']), /^text\/plain/)
  const note = parseNote(fetched.text)
  const checkpoint = parseCheckpoint(note.text)
  t.equal(checkpoint.size, head.seq, 'the checkpoint is at the head')
  t.equal(checkpoint.root.toString('hex'), head.signed.root)
  t.match(checkpoint.origin, /^ledgermesh\/[0-9a-f]{16}$/)
  t.equal((await httpRequest(`${replica.url}/checkpoint`, { timeoutMs: 10_000 })).text, fetched.text, 'the replica serves the same signed checkpoint')
  t.equal((await master.ok('get checkpoint')).text, fetched.text.trimEnd(), 'get checkpoint')

  // every entry's proof, from the replica, verifies against the master's checkpoint
  const entries: string[] = []
  const proofs: Array<{ index: number, size: number, proof: string[] }> = []
  for (let seq = 1; seq <= head.seq; seq++) {
    const proof = await getJson(replica, `/v1/proof/inclusion?seq=${seq}`)
    entries.push(proof.entry)
    proofs.push({ index: seq - 1, size: proof.tree_size, proof: proof.proof })
    const why = verifyInclusion(leafHash(Buffer.from(proof.entry)), seq - 1, checkpoint.size, proof.proof.map(b), checkpoint.root)
    if (why !== undefined) t.fail(`entry ${seq}: ${why}`)
  }
  t.pass(`${head.seq} inclusion proofs verify`)

  // and in an independent implementation (Python's hashlib and openssl), as the node served them
  const consistency = await Promise.all([1, 5, 64, head.seq - 1].map(async first => ({ first, second: head.seq, proof: (await getJson(master, `/v1/proof/consistency?first=${first}`)).proof })))
  const vkey = formatVkey({ name: checkpoint.origin, type: SIG_COSIGNATURE_V1, publicKey: masterKey })
  const check = spawnSync('python3', [join(ROOT, 'test', 'fixtures', 'tlog_check.py')], {
    input: JSON.stringify({ entries: entries.map(e => Buffer.from(e).toString('base64')), note: fetched.text, vkeys: [vkey], inclusion: proofs, consistency }),
    encoding: 'utf8',
    timeout: 120_000
  })
  t.equal(check.status, 0, check.stderr)
  const verdict = JSON.parse(check.stdout)
  t.same(verdict.note, { verified: [checkpoint.origin], origin: checkpoint.origin, size: head.seq, root_matches_entries: true }, 'the live checkpoint: its master signature verifies and its root is the MTH of the entries served')
  t.ok(verdict.inclusion.length === head.seq && verdict.inclusion.every((ok: boolean) => ok), 'every inclusion proof verifies there')
  t.same(verdict.consistency, [true, true, true, true], 'the consistency proofs verify there')
  const byId = await getJson(master, `/v1/proof/inclusion?id=${ids[7]}`)
  t.match(byId.entry, `"name":"p7"`, 'a proof by policy id carries the entry')
  t.equal(byId.checkpoint, fetched.text, 'and the checkpoint it is against')

  for (const first of [1, 2, 64, head.seq - 1, head.seq]) {
    const older = await getJson(master, `/v1/proof/inclusion?seq=1&size=${first}`)
    t.equal(older.tree_size, first)
    const consistency = await getJson(master, `/v1/proof/consistency?first=${first}`)
    // the older tree's root, rebuilt from its first entry's audit path (all right siblings)
    const root = older.proof.map(b).reduce((r: Buffer, sibling: Buffer) => nodeHash(r, sibling), leafHash(Buffer.from(older.entry)))
    t.equal(verifyConsistency(first, head.seq, consistency.proof.map(b), root, checkpoint.root), undefined, `consistency from ${first}`)
  }
  const badSize = await httpRequest(`${master.url}/v1/proof/inclusion?seq=1&size=${head.seq + 1}`, { timeoutMs: 10_000 })
  t.equal(badSize.status, 400, 'a size past the checkpoint')
  t.match(badSize.text, /not from 1 to/)
  t.equal((await httpRequest(`${master.url}/v1/proof/inclusion?id=${'0'.repeat(64)}`, { timeoutMs: 10_000 })).status, 404)
  t.equal((await httpRequest(`${master.url}/v1/proof/inclusion?id=xyz`, { timeoutMs: 10_000 })).status, 400, 'the schema names a bad id')

  // the log as C2SP tiles: served by the node, exported as static files, checked elsewhere
  const tile = await httpRequest(`${replica.url}/tile/0/000`, { timeoutMs: 10_000 })
  t.equal(tile.status, 200)
  t.equal(Number(tile.headers['content-length']), 256 * 32, 'a full tile: 256 hashes')
  t.match(String(tile.headers['content-type']), /application\/octet-stream/)
  t.match(String(tile.headers['cache-control']), /immutable/)
  t.equal((await httpRequest(`${master.url}/tile/0/009`, { timeoutMs: 10_000 })).status, 404, 'a tile beyond the tree')
  t.equal((await httpRequest(`${master.url}/tile/0/1234`, { timeoutMs: 10_000 })).status, 400, 'a malformed tile path')
  const mirror = join(dir, 'mirror')
  const exported = spawnSync(process.execPath, ['--import', POLYFILL, CLI, 'export-tiles', mirror, '--node', replica.url], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 })
  t.equal(exported.status, 0, exported.stderr)
  t.match(exported.stdout, new RegExp(`exported the log at tree size ${head.seq}: \\d+ files`))
  const tiles = spawnSync('python3', [join(ROOT, 'test', 'fixtures', 'tlog_check.py')], { input: JSON.stringify({ tiles_dir: mirror, vkeys: [vkey] }), encoding: 'utf8', timeout: 120_000 })
  t.equal(tiles.status, 0, tiles.stderr)
  t.same(JSON.parse(tiles.stdout), { tiles_ok: true, note: { verified: [checkpoint.origin], origin: checkpoint.origin, size: head.seq, root_matches_entries: true }, roots: [], inclusion: [], consistency: [] }, 'the exported tiles: every tile hashes its entries, and they rebuild the signed root')

  // ledgermesh verify, offline, from files
  const proofFile = join(dir, 'proof.json')
  const policyFile = join(dir, 'policy.json')
  const checkpointFile = join(dir, 'checkpoint')
  await writeFile(proofFile, JSON.stringify(byId))
  const policy = (await master.ok(`blockchain get probe where name = p7`)).json[0]
  await writeFile(policyFile, JSON.stringify(policy))
  await writeFile(checkpointFile, fetched.text)
  const ok = verifyCli('--checkpoint', checkpointFile, '--key', masterKey, '--proof', proofFile, '--policy', policyFile)
  t.equal(ok.status, 0, ok.out)
  t.match(ok.out, /verified: checkpoint ledgermesh\/[0-9a-f]{16} at tree size \d+ is signed by/)
  t.match(ok.out, /verified: the entry holds the policy given/)

  const other = new Ed25519Signer(randomBytes(32)).publicKey
  const unknownKey = verifyCli('--checkpoint', checkpointFile, '--key', other)
  t.equal(unknownKey.status, 1)
  t.match(unknownKey.out, /not verified: the checkpoint .* is not signed by the master keys given/)
  await writeFile(join(dir, 'tampered-policy.json'), JSON.stringify({ probe: { ...policy.probe, n: 8 } }))
  t.match(verifyCli('--key', masterKey, '--proof', proofFile, '--policy', join(dir, 'tampered-policy.json')).out, /the policy given is not the one entry \d+ holds/)
  await writeFile(join(dir, 'tampered-entry.json'), JSON.stringify({ ...byId, entry: byId.entry.replace('"p7"', '"p8"') }))
  t.match(verifyCli('--key', masterKey, '--proof', join(dir, 'tampered-entry.json')).out, /entry \d+ is not in the checkpoint's tree/)
  await writeFile(join(dir, 'wrong-size.json'), JSON.stringify({ ...byId, tree_size: byId.tree_size - 1 }))
  t.match(verifyCli('--key', masterKey, '--proof', join(dir, 'wrong-size.json')).out, /the proof is for a tree of \d+ entries, the checkpoint's has/)
  await writeFile(join(dir, 'forged-checkpoint'), fetched.text.replace(`\n${checkpoint.size}\n`, `\n${checkpoint.size + 1}\n`))
  t.match(verifyCli('--checkpoint', join(dir, 'forged-checkpoint'), '--key', masterKey).out, /does not verify/)
})

t.test('every entry of a 3,000-entry ledger has an inclusion proof that verifies', async t => {
  // the ledger is written to the master's store before it starts (ordered and signed under its
  // key); 3,000 entries: a tree 12 levels deep, 11 full tiles and a partial one, every proof shape
  const home = await preparedHome(t, 3_000)
  const master = await startNode(t, { type: 'master', name: 'tlog-10k', home })
  const note = parseNote((await httpRequest(`${master.url}/checkpoint`, { timeoutMs: 10_000 })).text)
  const checkpoint = parseCheckpoint(note.text)
  t.ok(checkpoint.size >= 3_000, `a checkpoint of ${checkpoint.size} entries`)
  const pool = new Pool(master.url, { connections: 8, pipelining: 1 })
  t.teardown(async () => { await pool.close() })
  const failures: string[] = []
  let next = 1
  const worker = async (): Promise<void> => {
    while (next <= checkpoint.size) {
      const seq = next++
      const res = await pool.request({ path: `/v1/proof/inclusion?seq=${seq}`, method: 'GET' })
      const proof = await res.body.json() as { entry: string, proof: string[], tree_size: number }
      const why = res.statusCode !== 200 ? `status ${res.statusCode}` : verifyInclusion(leafHash(Buffer.from(proof.entry)), seq - 1, checkpoint.size, proof.proof.map(b), checkpoint.root)
      if (why !== undefined) failures.push(`entry ${seq}: ${why}`)
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker))
  t.same(failures, [], `${checkpoint.size} inclusion proofs verify against the checkpoint`)
})
