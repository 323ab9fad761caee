import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePortBlock, waitFor } from './helpers/net.js'
import { ROOT } from './helpers/node-process.js'
import { launchBrowser } from './helpers/browser.js'
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
    return /ledgermesh demo ready[^]*Ctrl-C stops the whole network/.test(out) ? true : undefined
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

  // the console against the demo network: every node with its head, the 5 profiles on their
  // workers, and a drain of worker-1 clicked there, its profiles seen moving without a reload
  const browser = await launchBrowser(t)
  const ui = await browser.newPage({ viewport: { width: 1280, height: 800 } })
  await ui.goto(consoleUrl!)
  for (const name of ['master-1', 'slave-1', 'worker-1', 'worker-2']) await ui.locator(`tr[data-node="${name}"] td[data-field="head"]`).filter({ hasText: /^\d+$/ }).waitFor({ timeout: 30_000 })
  t.pass('the console lists the master, the slave and both workers with their heads')
  const placedOnPage = async (): Promise<Array<{ name: string, kind: string, worker: string }>> => await ui.$$eval('#allocation tr[data-profile]', rows => rows.map(r => ({ name: r.getAttribute('data-profile') ?? '', kind: r.children[1].textContent ?? '', worker: r.querySelector('[data-field="worker"]')?.textContent ?? '' })))
  await ui.waitForFunction(() => document.querySelectorAll('#allocation tr[data-profile]').length === 5, undefined, { timeout: 30_000 })
  const before = await placedOnPage()
  t.same(before.map(p => p.name).sort(), ['acme-linkedin-1', 'acme-linkedin-2', 'acme-verify', 'globex-facebook', 'globex-mta'], 'the 5 profiles')
  t.ok(before.every(p => p.worker === 'worker-1' || p.worker === 'worker-2'), `each on its worker (${before.map(p => `${p.name}@${p.worker}`).join(', ')})`)
  t.equal(await ui.locator('#allocation tr[data-subaccount]').count(), 2, 'the 2 sub-accounts, by slave')
  await ui.selectOption('#ledger select', 'profile')
  await ui.fill('#ledger input[name="where"]', 'kind = email-verification')
  await ui.click('#ledger button[type="submit"]')
  await ui.locator('#ledger tr[data-policy="acme-verify"]').waitFor({ timeout: 15_000 })
  t.equal(await ui.locator('#ledger [data-field="found"]').textContent(), '1 found', 'a search finds a demo profile by a field')

  // the fuller worker is drained: the other (3 slots) takes what of its kinds it has room for
  // (both run linkedin and facebook; email-verification only worker-1, mta only worker-2)
  const count = (w: string): number => before.filter(p => p.worker === w).length
  const [drained, target] = count('worker-1') >= count('worker-2') ? ['worker-1', 'worker-2'] : ['worker-2', 'worker-1']
  const free = 3 - count(target)
  const movable = before.filter(p => p.worker === drained && ['linkedin', 'facebook'].includes(p.kind)).length
  await ui.click(`tr[data-node="${drained}"] button[data-action="drain"]`)
  await ui.locator(`tr[data-node="${drained}"] .draining`).waitFor({ timeout: 30_000 })
  const moved = await ui.waitForFunction(({ from, to, names, want }) => {
    const cells = [...document.querySelectorAll('#allocation tr[data-profile]')].map(r => ({ name: r.getAttribute('data-profile'), worker: r.querySelector('[data-field="worker"]')?.textContent }))
    const arrived = cells.filter(c => c.worker === to && names.includes(c.name ?? '')).length
    return cells.every(c => c.worker !== from) && arrived === want ? arrived : false
  }, { from: drained, to: target, names: before.filter(p => p.worker === drained).map(p => p.name), want: Math.min(free, movable) }, { timeout: 60_000 })
  t.ok(Math.min(free, movable) >= 1, `${free} free slots on ${target}, ${movable} of ${drained}'s profiles of kinds it runs`)
  t.pass(`the drain clicked in the console moved ${String(await moved.jsonValue())} of ${drained}'s profiles to ${target}, seen on the page without a reload`)

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
