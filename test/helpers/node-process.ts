import { spawn, type ChildProcess } from 'node:child_process'
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { httpRequest } from './http.js'
import { freePort, waitFor } from './net.js'

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
/** The `ledgermesh` binary as users run it: the bundle `npm run build` writes (pretest builds it). */
export const CLI = join(ROOT, 'dist', 'bin', 'ledgermesh.js')
export const POLYFILL = join(ROOT, 'scripts', 'with-resolvers.mjs')

/** KEEP_LOGS=<dir>: every node's output lines are also appended (with the harness's time) to <dir>/<name>.log, every run of it */
const KEEP_LOGS = process.env.KEEP_LOGS

interface Teardown { teardown: (fn: () => void | Promise<void>) => void }

export interface CommandReply {
  status: number
  text: string
  /** the body parsed as JSON, when it is JSON */
  json?: any
}

/** A real ledgermesh node process started from an env file, on random free ports. */
export class NodeProcess {
  readonly stdout: string[] = []
  readonly stderr: string[] = []
  exitCode?: number | null
  /** headers every request of the harness's to this node carries (a REST token, for a node on another host) */
  headers: Record<string, string> = {}
  private exited: Promise<number | null>

  constructor (
    readonly name: string,
    readonly proc: ChildProcess,
    readonly envFile: string,
    readonly home: string,
    readonly tcpPort: number,
    readonly restPort: number,
    /** where its REST server answers (a node in a network namespace: its own address there) */
    readonly host = '127.0.0.1'
  ) {
    let out = ''
    proc.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const lines = out.split('\n')
      out = lines.pop() ?? ''
      this.stdout.push(...lines)
      if (KEEP_LOGS !== undefined && lines.length > 0) appendFileSync(join(KEEP_LOGS, `${name}.log`), lines.map(l => `${Date.now()} out ${l}\n`).join(''))
    })
    proc.stderr?.on('data', (chunk: Buffer) => {
      const lines = chunk.toString().split('\n').filter(l => l !== '')
      this.stderr.push(...lines)
      if (KEEP_LOGS !== undefined && lines.length > 0) appendFileSync(join(KEEP_LOGS, `${name}.log`), lines.map(l => `${Date.now()} err ${l}\n`).join(''))
    })
    this.exited = new Promise(resolve => proc.once('exit', code => { this.exitCode = code; resolve(code) }))
  }

  get url (): string { return `http://${this.host}:${this.restPort}` }
  get ledgerConn (): string { return `127.0.0.1:${this.tcpPort}` }

  /** Sends a command the AnyLog way: `command` header, GET for reads, POST for writes. */
  async command (command: string, opts: { method?: 'GET' | 'POST', body?: string, headers?: Record<string, string> } = {}): Promise<CommandReply> {
    const method = opts.method ?? (/^(blockchain (insert|delete|prepare)|run |connect |create |exit |process |worker )/.test(command) ? 'POST' : 'GET')
    const { status, text } = await httpRequest(this.url, {
      method,
      headers: { command, 'User-Agent': 'AnyLog/1.23', ...this.headers, ...(opts.headers ?? {}) },
      body: opts.body,
      timeoutMs: 15_000
    })
    let json: unknown
    try { json = JSON.parse(text) } catch { json = undefined }
    return { status, text, json }
  }

  /** Runs a command and fails unless it answered 200. */
  async ok (command: string, opts: { method?: 'GET' | 'POST', body?: string } = {}): Promise<CommandReply> {
    const reply = await this.command(command, opts)
    if (reply.status !== 200) throw new Error(`${this.name}: '${command}' answered ${reply.status}: ${reply.text}`)
    return reply
  }

  async waitForExit (timeoutMs = 10_000): Promise<number | null> {
    return await Promise.race([
      this.exited,
      new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error(`${this.name} did not exit within ${timeoutMs} ms`)), timeoutMs).unref())
    ])
  }

  /** SIGTERM, then SIGKILL if it has not exited within the grace period. */
  async stop (graceMs = 5000): Promise<void> {
    if (this.exitCode !== undefined) return
    this.proc.kill('SIGTERM')
    try {
      await this.waitForExit(graceMs)
    } catch {
      this.proc.kill('SIGKILL')
      await this.exited
    }
  }

  async kill (): Promise<void> {
    if (this.exitCode !== undefined) return
    this.proc.kill('SIGKILL')
    await this.exited
  }

  logs (): string {
    return [...this.stdout, ...this.stderr].join('\n')
  }
}

export interface NodeSpec {
  /** NODE_TYPE: ledgermesh's roles, or AnyLog's node types (which run as members) */
  type: 'master' | 'slave' | 'worker' | 'member' | 'operator' | 'query' | 'publisher' | 'generic' | 'master-operator' | 'master,slave,worker'
  name: string
  /** extra env keys (LEDGER_CONN, DB_TYPE, ...) */
  env?: Record<string, string | number>
  /** reuse a home directory (restart); default a fresh temp dir removed at teardown */
  home?: string
  /** reuse ports (restart) */
  tcpPort?: number
  restPort?: number
  /** start with --repl and keep stdin open for writes */
  repl?: boolean
  /** do not wait for the REST server (for nodes expected to fail at start) */
  noWait?: boolean
  /** run it in this network namespace (`ip netns exec`), its REST server reached at `host` */
  netns?: { name: string, host: string }
  /** how long to wait for it to start (default 30 s) */
  startWithinMs?: number
  /** extra variables in the child's process environment (not in its env file) */
  processEnv?: Record<string, string>
  /** node options before the CLI (e.g. ['--import', preload]) */
  nodeArgs?: string[]
  /**
   * A node whose LEDGER_CONN is a master started by startNode gets a join token from it
   * (JOIN_TOKEN), as an operator would hand one out; `join: false` starts it without one.
   */
  join?: boolean
  /** the master to get the join token from, when LEDGER_CONN is not its own address (a proxy) */
  master?: NodeProcess
}

/** Masters started here, by p2p address: nodes pointed at one are given a join token from it. */
const masters = new Map<string, { node: NodeProcess, restToken?: string }>()

async function joinTokenFrom (conn: string): Promise<string | undefined> {
  const master = masters.get(conn)
  if (master === undefined || master.node.exitCode !== undefined) return undefined
  return await createJoinToken(master.node, master.restToken)
}

/** `create join token` on a master started here: a token admitting one node. */
export async function createJoinToken (node: NodeProcess, restToken = [...masters.values()].find(m => m.node === node)?.restToken): Promise<string | undefined> {
  const master = { node, restToken }
  const reply = await master.node.command('create join token where uses = 1', {
    headers: master.restToken === undefined ? {} : { Authorization: `Bearer ${master.restToken}` }
  }).catch(() => undefined)
  return reply?.status === 200 ? reply.text.trim() : undefined
}

/** Writes an env file and starts `ledgermesh start` on it; stops the process at teardown. */
export async function startNode (t: Teardown, spec: NodeSpec): Promise<NodeProcess> {
  const dir = mkdtempSync(join(tmpdir(), `lm-${spec.name}-`))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const home = spec.home ?? join(dir, 'home')
  // freePort never hands out the same port twice, in this process or another one
  const tcpPort = spec.tcpPort ?? await freePort()
  const restPort = spec.restPort ?? await freePort()
  const isMaster = spec.type === 'master' || spec.type === 'master-operator' || spec.type.split(',').includes('master')
  const env: Record<string, string | number> = {
    NODE_TYPE: spec.type,
    NODE_NAME: spec.name,
    COMPANY_NAME: 'test co',
    ANYLOG_SERVER_PORT: tcpPort,
    ANYLOG_REST_PORT: restPort,
    BLOCKCHAIN_SYNC: '2 second',
    LOG_LEVEL: 'info',
    ...(isMaster ? { LEDGER_CONN: `127.0.0.1:${tcpPort}` } : {}),
    ...spec.env
  }
  if (!isMaster && spec.join !== false && env.JOIN_TOKEN === undefined && env.LEDGER_CONN !== undefined) {
    const token = spec.master !== undefined ? await createJoinToken(spec.master) : await joinTokenFrom(String(env.LEDGER_CONN))
    if (token !== undefined) env.JOIN_TOKEN = token
  }
  const envFile = join(dir, `${spec.name}.env`)
  writeFileSync(envFile, Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n') + '\n')
  const args = [...(spec.nodeArgs ?? []), '--import', POLYFILL, CLI, 'start', '--config', envFile, '--home', home, ...(spec.repl === true ? ['--repl'] : [])]
  const [command, argv] = spec.netns === undefined ? [process.execPath, args] : ['ip', ['netns', 'exec', spec.netns.name, process.execPath, ...args]]
  const proc = spawn(command, argv, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...spec.processEnv, LEDGERMESH_HOME: undefined } })
  const node = new NodeProcess(spec.name, proc, envFile, home, tcpPort, restPort, spec.netns?.host)
  t.teardown(async () => { await node.stop() })
  if (isMaster) {
    const conn = String(env.LEDGER_CONN)
    masters.set(conn, { node, restToken: env.REST_TOKEN === undefined ? undefined : String(env.REST_TOKEN) })
    t.teardown(() => { if (masters.get(conn)?.node === node) masters.delete(conn) })
  }
  if (spec.noWait !== true) {
    // Started = the start-up script has run to its end (the node logs "node started").
    let exited: Error | undefined
    await waitFor(`${spec.name} to start`, () => {
      // a node that exited will not start: say why now rather than at the timeout
      if (node.exitCode !== undefined) exited ??= new Error(`${spec.name} exited with ${node.exitCode}:\n${node.logs()}`)
      return exited !== undefined || node.stderr.some(line => line.includes('"msg":"node started"')) ? true : undefined
    }, { timeoutMs: spec.startWithinMs ?? 30_000 })
    if (exited !== undefined) throw exited
  }
  return node
}
