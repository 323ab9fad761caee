import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePortBlock, waitFor } from './helpers/net.js'
import { ROOT } from './helpers/node-process.js'
import { pidAlive } from './helpers/fleet.js'

/** the ports `ledgermesh demo --port <base>` uses: base + each */
const OFFSETS = [0, 1, 100, 101, 200, 201, 300, 301]

async function portFree (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const server = createServer()
    server.once('error', () => { resolve(false) })
    server.listen(port, '127.0.0.1', () => { server.close(() => { resolve(true) }) })
  })
}

/** `npm start -- <args>` in its own process group (a shell job: Ctrl-C reaches all of it), ready. */
async function startDemo (t: Test, base: number, args: string[] = []): Promise<{ output: () => string, ctrlC: () => Promise<number | null | 'timeout'> }> {
  const home = mkdtempSync(join(tmpdir(), 'lm-demo-'))
  t.teardown(() => { rmSync(home, { recursive: true, force: true }) })
  const npm = spawn('npm', ['start', '--silent', '--', '--port', String(base), '--home', home, ...args], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  npm.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
  npm.stderr.on('data', (chunk: Buffer) => { out += chunk.toString() })
  const exited = new Promise<number | null>(resolve => npm.once('exit', code => { resolve(code) }))
  let done = false
  t.teardown(async () => {
    if (!done) { try { process.kill(-npm.pid!, 'SIGKILL') } catch {} }
  })
  await waitFor('the demo to be ready', () => {
    if (npm.exitCode !== null) throw new Error(`npm start exited with ${npm.exitCode}:\n${out}`)
    return out.includes('ledgermesh demo ready') ? true : undefined
  }, { timeoutMs: 120_000, everyMs: 250 })
  return {
    output: () => out,
    ctrlC: async () => {
      process.kill(-npm.pid!, 'SIGINT')
      const code = await Promise.race([exited, new Promise<'timeout'>(resolve => setTimeout(() => { resolve('timeout') }, 60_000).unref())])
      done = code !== 'timeout'
      return code
    }
  }
}

t.test('npm start runs the demo network: every demo profile RUNNING, and Ctrl-C stops all of it', async t => {
  const base = await freePortBlock(OFFSETS)
  const demo = await startDemo(t, base)
  const out = demo.output()

  const profiles: Array<{ name: string, state: string, pid: number }> = []
  for (const offset of [201, 301]) {
    const body = await (await fetch(`http://127.0.0.1:${base + offset}/v1/profiles`)).json() as { profiles: typeof profiles }
    profiles.push(...body.profiles)
  }
  t.same(profiles.map(p => p.name).sort(), ['acme-linkedin-1', 'acme-linkedin-2', 'acme-verify', 'globex-facebook', 'globex-mta'], 'the demo profiles, one process each')
  t.ok(profiles.every(p => p.state === 'RUNNING' && pidAlive(p.pid)), 'every demo profile is RUNNING')
  await waitFor('the slave to hear from every profile', async () => {
    const body = await (await fetch(`http://127.0.0.1:${base + 101}/v1/profiles/reports`)).json() as { profiles: unknown[] }
    return body.profiles.length === 5 ? true : undefined
  })
  t.pass('the slave hears from every profile')
  const slaveView = await (await fetch(`http://127.0.0.1:${base + 101}/v1/profiles`)).json() as { processes: Array<{ state: string, name: string }> }
  t.equal(slaveView.processes.filter(p => p.state === 'RUNNING').length, 10, 'the slave runs its five processes for each of the two sub-accounts')
  t.match(out, /10 sub-account processes on slave-1/, 'and the demo says so')
  t.match(out, /acme-linkedin-1\s*\|linkedin\s*\|acme/, 'the master\'s placement is printed')
  const consoleUrl = /web console: (http:\/\/127\.0\.0\.1:\d+\/ui\/)/.exec(out)?.[1]
  t.ok(consoleUrl !== undefined, 'the console\'s URL is printed')
  const page = await fetch(consoleUrl!, { signal: AbortSignal.timeout(10_000) })
  t.equal(page.status, 200, 'and answers')
  t.match(await page.text(), /<title>ledgermesh console<\/title>/)

  // set up as a deployment would be: a private network, admission required, a token per node
  const ask = async (command: string) => await (await fetch(`http://127.0.0.1:${base + 1}`, { headers: { command } })).text()
  t.equal(await ask('blockchain get network where admission = required bring.count'), '1', 'the network requires admission')
  t.equal(await ask('blockchain get admission where via = join_token bring.count'), '3', 'the slave and both workers joined with tokens')
  const status = JSON.parse(await ask('get status where format=json')) as { private_network: unknown }
  t.match(status.private_network, { key_id: /^[0-9a-f]{16}$/ }, 'the master runs a private network (NETWORK_KEY)')

  t.not(await demo.ctrlC(), 'timeout', 'npm start ends on Ctrl-C')
  t.match(demo.output(), /ledgermesh demo: stopped/, 'the demo stopped its network before exiting')
  await waitFor('every profile process to be gone', () => profiles.every(p => !pidAlive(p.pid)) ? true : undefined, { timeoutMs: 15_000 })
  t.pass('no profile process is left')
  for (const offset of OFFSETS) {
    t.ok(await portFree(base + offset), `port ${base + offset} is free again (its node stopped)`)
  }
})

t.test('npm start -- --standalone runs the same network in one process', async t => {
  const base = await freePortBlock([0, 1])
  const demo = await startDemo(t, base, ['--standalone'])
  const body = await (await fetch(`http://127.0.0.1:${base + 1}/v1/profiles`)).json() as { profiles: Array<{ name: string, state: string, pid: number }> }
  t.same(body.profiles.map(p => p.name).sort(), ['acme-linkedin-1', 'acme-linkedin-2', 'acme-verify', 'globex-facebook', 'globex-mta'], 'the demo profiles, on the one node')
  t.ok(body.profiles.every(p => p.state === 'RUNNING' && pidAlive(p.pid)), 'every demo profile is RUNNING')
  const status = await (await fetch(`http://127.0.0.1:${base + 1}/v1/status`)).json() as { node_type: string }
  t.equal(status.node_type, 'master,slave,worker', 'one node holds every role')
  const solo = await (await fetch(`http://127.0.0.1:${base + 1}/v1/profiles`)).json() as { slave: { processes: Array<{ state: string, pid: number }> } }
  t.equal(solo.slave.processes.filter(p => p.state === 'RUNNING').length, 10, 'and runs the sub-account processes too')
  body.profiles.push(...solo.slave.processes.map(p => ({ name: 'sub-account process', state: p.state, pid: p.pid })))
  t.not(await demo.ctrlC(), 'timeout', 'Ctrl-C stops it')
  await waitFor('every profile process to be gone', () => body.profiles.every(p => !pidAlive(p.pid)) ? true : undefined, { timeoutMs: 15_000 })
  t.pass('no profile process is left')
  for (const offset of [0, 1]) t.ok(await portFree(base + offset), `port ${base + offset} is free again`)
})
