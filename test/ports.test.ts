import t from 'tap'
import { spawn } from 'node:child_process'
import { randomInt } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './helpers/net.js'
import { ROOT } from './helpers/node-process.js'

// The test helper every node test gets its ports from (test/helpers/net.ts): processes
// running at once must never be handed the same port.

const LOCK_DIR = join(tmpdir(), 'ledgermesh-test-ports')

interface Got { pid: number, ports?: number[], error?: string }

/**
 * A new process making `count` freePort calls (LEDGERMESH_TEST_PORTS=`range`): `got` is what
 * it was handed; it then holds its reservations, as a test process does, until `exit()`.
 */
function asker (count: number, range: string): { got: Promise<Got>, exit: () => Promise<number | null> } {
  const script = `import { freePort } from './test/helpers/net.js'
const ports = []
try {
  for (let i = 0; i < ${count}; i++) ports.push(await freePort())
  console.log(JSON.stringify({ ports }))
} catch (err) {
  console.log(JSON.stringify({ error: err.message }))
}
process.stdin.resume()
process.stdin.on('end', () => { process.exit(0) })`
  const proc = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: ROOT, env: { ...process.env, LEDGERMESH_TEST_PORTS: range }, stdio: ['pipe', 'pipe', 'inherit'], timeout: 60_000
  })
  const exited = new Promise<number | null>(resolve => proc.once('exit', resolve))
  let out = ''
  const got = new Promise<Got>((resolve, reject) => {
    proc.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      if (out.includes('\n')) resolve({ pid: proc.pid!, ...JSON.parse(out) as Omit<Got, 'pid'> })
    })
    void exited.then(code => { reject(new Error(`process ${proc.pid} exited with ${code} before answering`)) })
  })
  return { got, exit: async () => { proc.stdin.end(); return await exited } }
}

/** As asker, for a process that exits once it has answered. */
async function ask (count: number, range: string): Promise<Got> {
  const a = asker(count, range)
  try { return await a.got } finally { await a.exit() }
}

async function listenable (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const server = createServer()
    server.once('error', () => { resolve(false) })
    server.listen(port, '127.0.0.1', () => { server.close(() => { resolve(true) }) })
  })
}

/** The pid a reservation file names, if it exists. */
function holder (port: number): number | undefined {
  try { return Number.parseInt(readFileSync(join(LOCK_DIR, String(port)), 'utf8'), 10) } catch { return undefined }
}

t.test('processes asking at once are never handed the same port', async t => {
  // A block below the helper's default range (no other test draws there), every port free
  // now, and small: three processes taking 60 of its 100 ports would collide almost surely
  // (birthday odds below 1 in 10^7 to avoid it) if reservations did not hold across processes.
  let from = 0
  for (let attempt = 0; attempt < 50 && from === 0; attempt++) {
    const candidate = randomInt(10_000, 19_900)
    const ports = Array.from({ length: 100 }, (_, i) => candidate + i)
    if ((await Promise.all(ports.map(listenable))).every(Boolean)) from = candidate
  }
  t.not(from, 0, 'a block of 100 free ports')
  const askers = [1, 2, 3].map(() => asker(20, `${from}-${from + 99}`))
  t.teardown(async () => { await Promise.all(askers.map(async a => await a.exit())) })
  // all three are alive, holding what they were handed, until each has answered
  const runs = await Promise.all(askers.map(async a => await a.got))
  for (const r of runs) t.ok(r.ports !== undefined, `process ${r.pid} got its ports${r.error !== undefined ? `: ${r.error}` : ''}`)
  const ports = runs.flatMap(r => r.ports ?? [])
  t.equal(ports.length, 60)
  t.equal(new Set(ports).size, 60, 'no port handed out twice')
  t.ok(ports.every(p => p >= from && p < from + 100), 'every port from the range asked for')
  t.ok(runs.every(r => (r.ports ?? []).every(p => holder(p) === r.pid)), 'each holds its reservations while it runs')
  t.same(await Promise.all(askers.map(async a => await a.exit())), [0, 0, 0])
  t.ok(runs.every(r => (r.ports ?? []).every(p => holder(p) !== r.pid)), 'and drops them when it exits')
})

t.test('a port held by a live process is not handed out; one left by a dead process is', async t => {
  const port = await freePort()
  t.equal(holder(port), process.pid, 'this process holds the port it was given')
  const refused = await ask(1, `${port}-${port}`)
  t.match(refused, { error: /no free port in/ }, 'another process cannot have it')

  // As if this process had been killed: the file names a pid that no longer runs.
  const dead = refused.pid
  writeFileSync(join(LOCK_DIR, String(port)), `${dead}\n`)
  const reclaimed = await ask(1, `${port}-${port}`)
  t.same(reclaimed.ports, [port], 'another process reclaims it')
  t.not(holder(port), reclaimed.pid, 'and released it when it exited')
})
