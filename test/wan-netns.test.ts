import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import { checkPrerequisites, createNetwork, destroyNetwork, leftovers, netemAvailable, sweepStale } from '../bench/wan/netns.js'
import { linksFromEnv, makeTopology, NS_PREFIX } from '../bench/wan/topology.js'

const exec = promisify(execFile)

interface Teardown { teardown: (fn: () => void | Promise<void>) => void }
const PORT = 7411

async function namespaces (): Promise<string[]> {
  const { stdout } = await exec('ip', ['netns', 'list'], { timeout: 10_000 })
  return stdout.split('\n').map(l => l.trim().split(/\s+/)[0]).filter(n => n !== '')
}

async function rootLinks (): Promise<string[]> {
  const { stdout } = await exec('ip', ['-o', 'link', 'show'], { timeout: 10_000 })
  return stdout.split('\n').map(l => l.split(':')[1]?.trim()).filter((n): n is string => n !== undefined).sort()
}

/** Connects from inside `ns`: 'connected', an error code such as ENETUNREACH, or 'TIMEOUT'. */
async function connectFrom (ns: string, host: string, port: number): Promise<{ result: string, ms: number }> {
  const script = `
    const s = require('net').connect({ host: ${JSON.stringify(host)}, port: ${port} })
    const done = (r) => { console.log(r); process.exit(0) }
    s.on('connect', () => done('connected'))
    s.on('error', (e) => done(e.code || e.message))
    setTimeout(() => done('TIMEOUT'), 3000)`
  const started = Date.now()
  const { stdout } = await exec('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { timeout: 10_000, killSignal: 'SIGKILL' })
  return { result: stdout.trim(), ms: Date.now() - started }
}

/** A TCP server inside `ns` on host:port, killed at teardown; resolves once it listens. */
async function serveIn (tt: Teardown, ns: string, host: string, port: number): Promise<ChildProcess> {
  const script = `require('net').createServer((s) => s.end('hi')).listen(${port}, ${JSON.stringify(host)}, () => console.log('listening'))`
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] })
  tt.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`server in ${ns} on ${host}:${port} did not listen within 5 s: ${stderr}`)) }, 5000)
    child.stdout?.on('data', (d: Buffer) => { if (d.toString().includes('listening')) { clearTimeout(timer); resolve() } })
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server in ${ns} exited (${String(code)}): ${stderr}`)) })
  })
  return child
}

const prerequisites = await checkPrerequisites().then(() => undefined, (err: Error) => err)

if (prerequisites !== undefined) {
  // never a silent skip: CI runs as root, and this harness is useless without it
  t.fail(`wan-netns needs root and iproute2: ${prerequisites.message}`)
} else {
  t.test('three hosts: public addresses through the hub, own addresses from the hub only', async t => {
    const runId = `t${process.pid}`
    const topo = makeTopology(runId, { regions: 2, masters: 1, slaves: 0, workers: 1, members: 1, joiners: 0 }, linksFromEnv())
    t.equal(topo.hosts.length, 3)
    const linksBefore = await rootLinks()
    const started = Date.now()
    await createNetwork(topo)
    t.teardown(async () => { await destroyNetwork(runId) })
    t.comment(`createNetwork: ${Date.now() - started} ms for ${topo.hosts.length} hosts`)
    t.same(await rootLinks(), linksBefore, 'no interface appears in the root namespace')

    const [h1, h2] = topo.hosts
    await serveIn(t, topo.hubNs, h2.publicIp, PORT)
    t.equal((await connectFrom(h1.ns, h2.publicIp, PORT)).result, 'connected', 'host 1 reaches host 2\'s public address (the hub)')

    await serveIn(t, h2.ns, h2.ip, PORT)
    t.equal((await connectFrom(topo.hubNs, h2.ip, PORT)).result, 'connected', 'the hub reaches host 2\'s own address')
    const direct = await connectFrom(h1.ns, h2.ip, PORT)
    t.not(direct.result, 'connected', 'host 1 cannot reach host 2\'s own address')
    t.equal(direct.result, 'ENETUNREACH', 'no route: the attempt is refused by the kernel, not left to time out')

    // both servers still run: destroyNetwork has to kill them
    await destroyNetwork(runId)
    t.same(await leftovers(runId), [], 'nothing left of the run')
    t.same((await namespaces()).filter(n => n.startsWith(`${NS_PREFIX}${runId}-`)), [], 'no namespace of the run')
    await destroyNetwork(runId) // idempotent
  })

  t.test('sweepStale removes a dead run\'s namespaces and keeps a live one', async t => {
    let deadPid = 999_999_999 // above any pid_max (at most 2^22)
    for (let i = 0; i < 100; i++, deadPid--) {
      try { process.kill(deadPid, 0) } catch (err) { if ((err as NodeJS.ErrnoException).code === 'ESRCH') break }
    }
    const dead = `t${deadPid}`
    const live = `t${process.pid}`
    t.teardown(async () => { await destroyNetwork(dead); await destroyNetwork(live) })
    for (const ns of [`${NS_PREFIX}${dead}-hub`, `${NS_PREFIX}${dead}-h1`, `${NS_PREFIX}${live}-hub`]) {
      await exec('ip', ['netns', 'add', ns], { timeout: 10_000 })
    }
    // a process inside the stale run: the sweep has to kill it before deleting the namespace
    const sleeper = spawn('ip', ['netns', 'exec', `${NS_PREFIX}${dead}-h1`, 'sleep', '60'], { stdio: 'ignore' })
    t.teardown(() => { if (sleeper.exitCode === null && sleeper.signalCode === null) sleeper.kill('SIGKILL') })
    for (let i = 0; i < 50 && (await leftovers(dead)).length < 3; i++) await new Promise(resolve => setTimeout(resolve, 50))
    t.equal((await leftovers(dead)).filter(l => l.startsWith('pid ')).length, 1, 'the sleeper runs in the stale run')

    const removed = await sweepStale()
    t.ok(removed.includes(dead), `swept ${dead} (removed: ${removed.join(', ')})`)
    t.notOk(removed.includes(live), 'a live run is kept')
    t.same(await leftovers(dead), [])
    t.same((await leftovers(live)).length, 1, 'the live run\'s namespace is still there')
    await destroyNetwork(live)
    t.same(await leftovers(live), [])
  })

  t.test('netemAvailable answers and leaves no namespace', async t => {
    const before = await namespaces()
    const available = await netemAvailable()
    t.type(available, 'boolean')
    t.comment(`netem available: ${String(available)}`)
    t.same(await namespaces(), before, 'the probe namespace is gone')
  })
}
