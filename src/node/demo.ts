import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { errorMessage } from '../base/errors.js'
import { loadConfigFile } from './config.js'
import { createNodeLogger } from './logger.js'
import { LedgerMeshNode } from './node.js'
import { NODE_BINARY, PACKAGE_ROOT, SCRIPTS_DIR } from './paths.js'
import { runRepl } from './repl.js'

/**
 * `ledgermesh demo` (what `npm start` runs): a whole network on loopback with the embedded
 * store. The master runs in this process, with its REPL on the terminal; a slave and two
 * workers run as child processes from env files written under the demo home, each worker
 * running scripts/demo-runner.mjs per profile, the slave scripts/demo-subaccount-runner.mjs
 * per sub-account and SUBACCOUNT_PROCESSES kind. With `standalone`, one node in this process
 * holds the master, slave and worker roles (NODE_TYPE=master,slave,worker). scripts/demo.al
 * then inserts sub-accounts and profiles of several kinds, and the demo waits until every
 * profile and sub-account process runs. Ctrl-C stops it all.
 *
 * Ports: the master at `port` (p2p) and `port + 1` (REST); the slave at +100/+101, the workers
 * at +200/+201 and +300/+301.
 *
 * Set up as a real deployment would be: a private network (a fresh NETWORK_KEY in
 * config/network.key, readable by its owner only) that requires admission, and each node
 * admitted with its own single-use join token, created on the master before the node starts.
 */
export interface DemoOptions {
  home: string
  port: number
  /** read commands from stdin even when it is not a terminal */
  repl?: boolean
  /** the same network in one process: one node holding the master, slave and worker roles */
  standalone?: boolean
}

const START_TIMEOUT_MS = 60_000
/** a join token needs to live only until its node has started */
const JOIN_TOKEN_TTL_MS = 10 * 60_000
const RUNNER = `${process.execPath} ${join(SCRIPTS_DIR, 'demo-runner.mjs')}`
/** MassProspecting's slave processes, run for each sub-account by the slave */
const SUBACCOUNT_KINDS = ['ingest', 'import', 'plan', 'rule', 'timeline']

interface DemoNode { name: string, env: Record<string, string | number>, restPort: number }

function demoNodes (port: number, standalone: boolean, logDir: string): DemoNode[] {
  const common = { COMPANY_NAME: 'ledgermesh-demo', INTERNAL_IP: '127.0.0.1', LEDGER_CONN: `127.0.0.1:${port}`, BLOCKCHAIN_SYNC: '30 seconds', LOG_LEVEL: 'info', NETWORK_KEY: 'network.key', ADMISSION: 'required' }
  const node = (name: string, offset: number, env: Record<string, string | number>): DemoNode => ({
    name,
    restPort: port + offset + 1,
    env: { ...common, NODE_NAME: name, ANYLOG_SERVER_PORT: port + offset, ANYLOG_REST_PORT: port + offset + 1, ...env }
  })
  const runners = (kinds: string[]) => Object.fromEntries(kinds.map(k => [`PROFILE_RUNNER_${k.toUpperCase().replace(/-/g, '_')}`, RUNNER]))
  // each sub-account process records its runs (scripts/demo-subaccount-runner.mjs) under the logs
  const subaccountRunner = `${process.execPath} ${join(SCRIPTS_DIR, 'demo-subaccount-runner.mjs')} ${join(logDir, 'subaccount-runs.jsonl')}`
  const subaccounts = { SUBACCOUNT_PROCESSES: SUBACCOUNT_KINDS.join(','), ...Object.fromEntries(SUBACCOUNT_KINDS.map(k => [`SUBACCOUNT_RUNNER_${k.toUpperCase()}`, subaccountRunner])) }
  const kinds = ['linkedin', 'email-verification', 'facebook', 'mta']
  if (standalone) return [node('solo-1', 0, { NODE_TYPE: 'master,slave,worker', DB_TYPE: 'level', SLOTS: 10, PROFILE_KINDS: kinds.join(','), ...runners(kinds), ...subaccounts })]
  return [
    node('master-1', 0, { NODE_TYPE: 'master', DB_TYPE: 'level' }),
    node('slave-1', 100, { NODE_TYPE: 'slave', SLOTS: 10, ...subaccounts }),
    node('worker-1', 200, { NODE_TYPE: 'worker', BLOCKCHAIN_SOURCE: 'slave-1', SLAVE_NAME: 'slave-1', SLOTS: 3, PROFILE_KINDS: 'linkedin,email-verification,facebook', ...runners(['linkedin', 'email-verification', 'facebook']) }),
    node('worker-2', 300, { NODE_TYPE: 'worker', BLOCKCHAIN_SOURCE: 'slave-1', SLAVE_NAME: 'slave-1', SLOTS: 3, PROFILE_KINDS: 'linkedin,mta,facebook', ...runners(['linkedin', 'mta', 'facebook']) })
  ]
}

async function until<T> (what: string, check: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + START_TIMEOUT_MS
  for (;;) {
    const value = await check()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`the demo gave up waiting for ${what} after ${START_TIMEOUT_MS / 1000} s`)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}

export async function runDemo (opts: DemoOptions): Promise<void> {
  const say = (line: string) => { process.stdout.write(`${line}\n`) }
  rmSync(opts.home, { recursive: true, force: true })
  const configDir = join(opts.home, 'config')
  const logDir = join(opts.home, 'logs')
  mkdirSync(configDir, { recursive: true })
  mkdirSync(logDir, { recursive: true })
  const nodes = demoNodes(opts.port, opts.standalone === true, logDir)
  writeFileSync(join(configDir, 'network.key'), `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 })
  const writeEnv = (n: DemoNode): void => {
    writeFileSync(join(configDir, `${n.name}.env`), Object.entries(n.env).map(([k, v]) => `${k}=${v}`).join('\n') + '\n', { mode: 0o600 })
  }

  const [masterSpec, ...others] = nodes
  writeEnv(masterSpec)
  const config = loadConfigFile(join(configDir, `${masterSpec.name}.env`))
  const { log, secrets } = createNodeLogger(config, { file: join(logDir, `${masterSpec.name}.log`) })
  const master = new LedgerMeshNode({ config, home: join(opts.home, masterSpec.name), log, secrets })
  const children = new Map<string, ChildProcess>()

  let stopping: Promise<void> | undefined
  const shutdown = async (code: number): Promise<void> => {
    stopping ??= (async () => {
      say('ledgermesh demo: stopping the workers, the slave and the master ...')
      await Promise.all([...children].map(async ([name, child]) => {
        if (child.exitCode !== null || child.signalCode !== null) return
        const exited = new Promise(resolve => child.once('exit', resolve))
        child.kill('SIGTERM')
        const timer = setTimeout(() => { log.warn({ node: name }, 'demo node did not stop: SIGKILL'); child.kill('SIGKILL') }, 15_000)
        await exited
        clearTimeout(timer)
      }))
      await master.stop()
      say('ledgermesh demo: stopped')
      process.exit(code)
    })()
    await stopping
  }
  master.on('exit', code => { void shutdown(code) })
  process.on('SIGINT', () => { void shutdown(0) })
  process.on('SIGTERM', () => { void shutdown(0) })

  try {
    say(`ledgermesh demo: home ${opts.home}, logs in ${logDir}`)
    await master.start()
    say(`  ${masterSpec.name.padEnd(8)}  p2p 127.0.0.1:${opts.port}  REST http://127.0.0.1:${masterSpec.restPort}${opts.standalone === true ? '  (master, slave and worker in this one process)' : ''}`)
    for (const n of others) {
      // each node joins with its own single-use token, as an operator would hand them out
      const token = await master.admission!.createToken({ ttlMs: JOIN_TOKEN_TTL_MS, uses: 1 })
      writeEnv({ ...n, env: { ...n.env, JOIN_TOKEN: token.token } })
      const out = openSync(join(logDir, `${n.name}.log`), 'a')
      const child = spawn(process.execPath, ['--import', join(SCRIPTS_DIR, 'with-resolvers.mjs'), NODE_BINARY, 'start', '--config', join(configDir, `${n.name}.env`), '--home', join(opts.home, n.name)], {
        cwd: PACKAGE_ROOT,
        stdio: ['ignore', out, out],
        env: { ...process.env, LEDGERMESH_HOME: undefined }
      })
      children.set(n.name, child)
      child.on('exit', (code, signal) => {
        if (stopping === undefined) log.error({ node: n.name, code, signal }, 'demo node exited')
        if (stopping === undefined) say(`ledgermesh demo: ${n.name} exited (${signal ?? `code ${code}`}); see ${join(logDir, `${n.name}.log`)}`)
      })
      say(`  ${n.name.padEnd(8)}  p2p 127.0.0.1:${String(n.env.ANYLOG_SERVER_PORT)}  REST http://127.0.0.1:${n.restPort}`)
    }
    await until('the slave and the workers to declare themselves', () => {
      for (const [name, child] of children) if (child.exitCode !== null) throw new Error(`${name} exited with code ${child.exitCode}; see ${join(logDir, `${name}.log`)}`)
      return others.every(n => master.ledger.state.findByName(String(n.env.NODE_TYPE), n.name) !== undefined) ? true : undefined
    })
    await master.executor.run(`process ${JSON.stringify(join(SCRIPTS_DIR, 'demo.al'))}`, { via: 'script' })
    const expected = [...master.ledger.state.policiesOfType('profile')].length
    const running = await until(`all ${expected} demo profiles to run`, async () => {
      let count = 0
      for (const n of [masterSpec, ...others].filter(o => String(o.env.NODE_TYPE).split(',').includes('worker'))) {
        try {
          const body = await (await fetch(`http://127.0.0.1:${n.restPort}/v1/profiles`, { signal: AbortSignal.timeout(2000) })).json() as { profiles: Array<{ state: string }> }
          count += body.profiles.filter(p => p.state === 'RUNNING').length
        } catch { return undefined }
      }
      return count >= expected ? count : undefined
    })
    // the slave runs SUBACCOUNT_PROCESSES for each of the two sub-accounts
    const slaveSpec = [masterSpec, ...others].find(n => String(n.env.NODE_TYPE).split(',').includes('slave'))!
    const subaccountProcesses = await until('the slave\'s sub-account processes to run', async () => {
      try {
        const body = await (await fetch(`http://127.0.0.1:${slaveSpec.restPort}/v1/profiles`, { signal: AbortSignal.timeout(2000) })).json() as { processes?: Array<{ state: string }>, slave?: { processes: Array<{ state: string }> } }
        const processes = body.processes ?? body.slave?.processes ?? []
        const running = processes.filter(p => p.state === 'RUNNING').length
        return running >= 2 * SUBACCOUNT_KINDS.length ? running : undefined
      } catch { return undefined }
    })
    const placement = await master.executor.run('get profiles', { via: 'script' })
    say(placement.map(r => r.output?.text ?? '').join('\n'))
    // one write, so a reader that sees the ready line sees the rest of the block with it
    say([
      `ledgermesh demo ready: ${running} profiles RUNNING on ${opts.standalone === true ? `${masterSpec.name} (stand-alone)` : 'worker-1 and worker-2'}, ${subaccountProcesses} sub-account processes on ${slaveSpec.name}`,
      '  try: get profiles | get processes | blockchain get assignment bring.table [assignment][profile] [assignment][worker]',
      `  or:  curl -H 'command: get profiles' http://127.0.0.1:${(others[0] ?? masterSpec).restPort}   (the slave's view)`,
      `  web console: http://127.0.0.1:${masterSpec.restPort}/ui/`,
      '  Ctrl-C stops the whole network.'
    ].join('\n'))
  } catch (err) {
    say(`ledgermesh demo: ${errorMessage(err)}`)
    await shutdown(1)
    return
  }

  if (opts.repl === true || process.stdin.isTTY === true) {
    await runRepl(master)
    await shutdown(0)
  }
}
