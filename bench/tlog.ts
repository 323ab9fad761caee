import { join } from 'node:path'
import { silentLogger } from '../src/base/logger.js'
import { Ledger } from '../src/ledger/ledger.js'
import { LevelStore } from '../src/ledger/level-store.js'
import { parseCheckpoint } from '../src/ledger/tlog/checkpoint.js'
import { MerkleTree } from '../src/ledger/tlog/merkle-tree.js'
import { parseNote } from '../src/ledger/tlog/note.js'
import { verifyConsistency, verifyInclusion } from '../src/ledger/tlog/proof.js'
import { leafHash } from '../src/ledger/tlog/rfc6962.js'
import { exportTiles } from '../src/node/export-tiles.js'
import { TileMirror } from '../src/services/tile-mirror.js'
import { startNode } from '../test/helpers/node-process.js'
import { serveDirectory } from '../test/helpers/static-server.js'
import { httpJson, httpRequest } from '../test/helpers/http.js'
import { envInt, percentile, round, secondsSince, tempDir, waitQuiet, withCleanup } from './lib/harness.js'
import { preparedHome } from './rest.js'
import { type SequentialRun, latencyFigures, sequential } from './lib/sequential.js'

interface Served extends SequentialRun { answers: Array<{ at: number, status: number, body: string }> }

/**
 * The verifiable log's costs (docs/verifiable-log.md):
 * - tlog-proofs: a Merkle tree of BENCH_TREE_LEAVES entries (default 1,000,000) built by
 *   appends as the ledger builds it, then 10,000 inclusion and 10,000 consistency proofs for
 *   random leaves and sizes: time per proof (the node's part of serving one), proof bytes
 *   against the 32·⌈log₂ n⌉ bound, each proof verified.
 * - tlog-proofs-served: the same proofs as a client gets them: a master node (`ledgermesh
 *   start`, dist/, LOG_LEVEL info) holding BENCH_SERVED_ENTRIES entries (default 1,000,000,
 *   written to its store before it starts, as preparedHome does) answers
 *   `GET /v1/proof/inclusion?seq=<random>` and `GET /v1/proof/consistency?first=<random>` (to
 *   its checkpoint), BENCH_SERVED_REQUESTS (2,000) of each after the warm-up's (bench/lib/sequential.ts), one
 *   after another on one keep-alive connection (undici's Client); each latency runs from the
 *   request sent to its body read. Every inclusion proof is then verified against the signed
 *   checkpoint; each consistency proof is checked to be to the checkpoint's size and within
 *   ⌈log₂ n⌉ + 1 hashes (verifying it needs the root of the first size, which a client holds
 *   from an earlier checkpoint and this one does not). The requests start once the node is
 *   quiet (under 5% of a core over a second, waitQuiet): serving, not its start-up.
 * - tlog-tiles: a master node holding BENCH_TILES_POLICIES policies (default 100,000) is
 *   exported with `export-tiles`; the files are served by a plain web server (Python's
 *   http.server) and a fresh replica ledger, trusting only the master's key, catches up from
 *   them alone; its head and root must be the master's.
 */
const PROOFS = 10_000

export async function tlogProofs (): Promise<object[]> {
  const n = envInt('BENCH_TREE_LEAVES', 1_000_000)
  const tree = new MerkleTree()
  const heapBefore = process.memoryUsage().arrayBuffers
  let started = performance.now()
  for (let i = 0; i < n; i++) tree.append(Buffer.from(`${'0'.repeat(64)}:${i + 1}:{"op":"put","policy":{"probe":{"name":"p${i}"}}}`))
  const appendUs = ((performance.now() - started) * 1000) / n
  const treeMb = (process.memoryUsage().arrayBuffers - heapBefore) / 2 ** 20
  const bound = 32 * Math.ceil(Math.log2(n))
  const root = tree.root()
  const inclusion: number[] = []
  let inclusionBytes = 0
  for (let i = 0; i < PROOFS; i++) {
    const index = Math.floor(Math.random() * n)
    started = performance.now()
    const proof = tree.inclusionProof(index, n)
    inclusion.push(performance.now() - started)
    inclusionBytes = Math.max(inclusionBytes, 32 * proof.length)
    if (verifyInclusion(tree.leafHash(index), index, n, proof, root) !== undefined) throw new Error(`tlog-proofs: inclusion proof ${index} does not verify`)
  }
  const consistency: number[] = []
  let consistencyBytes = 0
  for (let i = 0; i < PROOFS; i++) {
    const first = 1 + Math.floor(Math.random() * (n - 1))
    started = performance.now()
    const proof = tree.consistencyProof(first, n)
    consistency.push(performance.now() - started)
    consistencyBytes = Math.max(consistencyBytes, 32 * proof.length)
    if (i % 100 === 0 && verifyConsistency(first, n, proof, tree.root(first), root) !== undefined) throw new Error(`tlog-proofs: consistency proof ${first} does not verify`)
  }
  const row = (what: string, times: number[], bytes: number): object => ({
    what, entries: n, p50_ms: round(percentile(times, 50), 4), p99_ms: round(percentile(times, 99), 4), max_bytes: bytes, bound_bytes: bound,
    goal: `p99 < 1 ms and <= ${bound} bytes: ${percentile(times, 99) < 1 && bytes <= bound ? 'met' : 'missed'}`
  })
  return [
    { what: 'append (leaf hash and the parents it completes)', entries: n, us_each: round(appendUs, 2), tree_mb: round(treeMb, 1) },
    row('inclusion proof', inclusion, inclusionBytes),
    { ...row('consistency proof', consistency, consistencyBytes), note: 'an RFC 6962 consistency proof has up to ⌈log₂ n⌉ + 1 hashes (the subtree of the first size\'s root among them)' }
  ]
}

export async function tlogTiles (): Promise<object[]> {
  return await withCleanup(async t => {
    const size = envInt('BENCH_TILES_POLICIES', 100_000)
    const home = await preparedHome(t, size)
    const master = await startNode(t, { type: 'master', name: 'bench-tiles', home })
    const head = await httpJson(`${master.url}/v1/ledger/head`, 10_000) as { seq: number, signed: { root: string, publicKey: string } }
    const dir = tempDir(t, 'lm-bench-tiles-')
    let started = performance.now()
    const exported = await exportTiles(master.url, dir)
    const exportMs = performance.now() - started

    const url = await serveDirectory(t, dir)
    const log = silentLogger()
    const replica = new Ledger({ store: new LevelStore({ path: join(tempDir(t, 'lm-bench-tiles-replica-'), 'ledger'), durable: false }), log, masterKey: head.signed.publicKey })
    await replica.open()
    t.teardown(async () => { await replica.close() })
    started = performance.now()
    const applied = await new TileMirror(url, log).catchUp(replica)
    const catchUpMs = performance.now() - started
    const same = replica.head.seq === head.seq && replica.signedHead?.root === head.signed.root
    if (!same) throw new Error(`tlog-tiles: the replica caught up to ${replica.head.seq} (root ${replica.signedHead?.root}), the master is at ${head.seq} (root ${head.signed.root})`)
    return [
      { what: 'export-tiles (over REST from a master node)', entries: head.seq, files: exported.files, mb: round(exported.bytes / 2 ** 20, 1), seconds: round(exportMs / 1000, 2), goal: `< 5 s: ${exportMs < 5000 ? 'met' : 'missed'}` },
      { what: 'a fresh replica catches up from the static tiles alone (python3 -m http.server)', entries: applied, seconds: round(catchUpMs / 1000, 2), same_head_and_root_as_the_master: same }
    ]
  })
}

export async function tlogProofsServed (opts: { entries?: number, requests?: number } = {}): Promise<object[]> {
  return await withCleanup(async t => {
    const size = opts.entries ?? envInt('BENCH_SERVED_ENTRIES', 1_000_000)
    const requests = opts.requests ?? envInt('BENCH_SERVED_REQUESTS', 2000)
    let started = performance.now()
    const home = await preparedHome(t, size)
    const prepareS = secondsSince(started)
    started = performance.now()
    // the node folds the whole log (chain links, state, tree) before it serves
    const master = await startNode(t, { type: 'master', name: 'bench-proofs', home, startWithinMs: 30 * 60_000 })
    const startS = secondsSince(started)
    // serving, not starting: the fold of a million entries leaves V8 collecting for seconds
    const settleS = (await waitQuiet([master.proc.pid!], { withinMs: 120_000 })) / 1000
    const checkpoint = parseCheckpoint(parseNote((await httpRequest(`${master.url}/checkpoint`, { timeoutMs: 10_000 })).text).text)
    if (checkpoint.size < size) throw new Error(`tlog-proofs-served: the node's checkpoint is of ${checkpoint.size} entries, not ${size}`)
    const n = checkpoint.size
    // random entries, a new one for every request (the warm-up's too)
    const seqs = Array.from({ length: requests }, () => 1 + Math.floor(Math.random() * n))
    const firsts = Array.from({ length: requests }, () => 1 + Math.floor(Math.random() * (n - 1)))
    const random = (values: number[], i: number): number => i >= 0 ? values[i]! : values[(-1 - i) % values.length]!
    const served = async (path: (i: number) => string): Promise<Served> => {
      const answers: Served['answers'] = []
      const run = await sequential(master.url, requests, i => ({ method: 'GET', path: path(i) }), (i, status, body) => { if (i >= 0) answers.push({ at: i, status, body }) })
      return { ...run, answers }
    }
    const inclusion = await served(i => `/v1/proof/inclusion?seq=${random(seqs, i)}`)
    const consistency = await served(i => `/v1/proof/consistency?first=${random(firsts, i)}`)
    const b = (s: string): Buffer => Buffer.from(s, 'base64')
    let inclusionBytes = 0
    for (const { at, status, body } of inclusion.answers) {
      const proof = status === 200 ? JSON.parse(body) as { entry: string, proof: string[], tree_size: number } : undefined
      const why = proof === undefined ? `HTTP ${status}: ${body.slice(0, 200)}` : verifyInclusion(leafHash(proof.entry), seqs[at] - 1, proof.tree_size, proof.proof.map(b), checkpoint.root)
      if (why !== undefined) throw new Error(`tlog-proofs-served: the inclusion proof of entry ${seqs[at]} does not verify: ${why}`)
      inclusionBytes = Math.max(inclusionBytes, 32 * proof!.proof.length)
    }
    let consistencyBytes = 0
    for (const { at, status, body } of consistency.answers) {
      const proof = status === 200 ? JSON.parse(body) as { first: number, second: number, proof: string[] } : undefined
      if (proof === undefined || proof.first !== firsts[at] || proof.second !== n || proof.proof.length > Math.ceil(Math.log2(n)) + 1) throw new Error(`tlog-proofs-served: a consistency proof from ${firsts[at]}: HTTP ${status}: ${body.slice(0, 200)}`)
      consistencyBytes = Math.max(consistencyBytes, 32 * proof.proof.length)
    }
    const row = (what: string, run: Served, bytes: number): object => ({
      what,
      entries: n,
      requests,
      ...latencyFigures(run),
      max_proof_bytes: bytes,
      goal: `p99 < 1 ms: ${percentile(run.latencies, 99) < 1 ? 'met' : 'missed'}`
    })
    return [
      { what: 'a master node holding the log: its store written, then `ledgermesh start` until it serves, then until it goes quiet', entries: n, prepare_s: round(prepareS, 1), start_s: round(startS, 1), quiet_after_s: round(settleS, 1) },
      row('GET /v1/proof/inclusion?seq=<random> (verified against the checkpoint)', inclusion, inclusionBytes),
      row('GET /v1/proof/consistency?first=<random> (to the checkpoint)', consistency, consistencyBytes)
    ]
  })
}
