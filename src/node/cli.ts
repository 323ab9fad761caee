import { Argument, Command, Option } from 'commander'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { isLedgerMeshError, errorMessage } from '../base/errors.js'
import { createInterface } from 'node:readline'
import { Executor } from '../commands/executor.js'
import { parseScript } from '../commands/parser.js'
import { VERSION } from '../base/version.js'
import { SWARM_KEY_HEADER, loadConfigFile, type NodeConfig } from './config.js'
import { createNodeLogger } from './logger.js'
import { PACKAGE_ROOT } from './paths.js'
import { needsMoreInput, runRepl } from './repl.js'
// The node, the REPL and the demo load libp2p and the stores (seconds on a busy machine):
// they are imported once the config is known to be good, so a bad env file fails at once.

/** Exit codes: 0 clean stop, 1 runtime failure, 2 bad configuration or usage. */
const EXIT_FAILURE = 1
const EXIT_CONFIG = 2

function fail (message: string, code: number): never {
  process.stderr.write(`ledgermesh: ${message}\n`)
  process.exit(code)
}

function loadConfigOrExit (path: string): NodeConfig {
  try {
    return loadConfigFile(path)
  } catch (err) {
    fail(`config error: ${errorMessage(err)}`, EXIT_CONFIG)
  }
}

/** Starts a node from its env file and keeps it running until `exit node` or a signal. */
async function startNode (opts: { config: string, home?: string, repl?: boolean, script?: string }): Promise<void> {
  const config = loadConfigOrExit(opts.config)
  const { log, secrets } = createNodeLogger(config)
  const { LedgerMeshNode } = await import('./node.js')
  const node = new LedgerMeshNode({ config, home: opts.home, log, secrets })

  let stopping = false
  const stopAndExit = async (code: number): Promise<void> => {
    if (stopping) return
    stopping = true
    await node.stop()
    process.exit(code)
  }
  node.on('exit', code => { void stopAndExit(code) })
  process.on('SIGINT', () => { void stopAndExit(0) })
  process.on('SIGTERM', () => { void stopAndExit(0) })

  try {
    await node.start({ script: opts.script })
  } catch (err) {
    log.error({ err: errorMessage(err), code: isLedgerMeshError(err) ? err.code : 'internal' }, 'start-up failed')
    await node.stop()
    fail(`start-up failed: ${errorMessage(err)}`, isLedgerMeshError(err) && err.code === 'bad_config' ? EXIT_CONFIG : EXIT_FAILURE)
  }

  if (opts.repl === true || process.stdin.isTTY === true) {
    await runRepl(node)
    log.info('stdin closed: the REPL is off, the node keeps running')
  }
}

/** What a node answered to one command sent over REST. */
interface RemoteReply { ok: boolean, status: number, text: string }

/** Sends one command to a running node (GET for reads, POST for writes, as its catalog says). */
async function requestCommand (command: string, opts: { node: string, token?: string }): Promise<RemoteReply> {
  let method: 'GET' | 'POST' = 'GET'
  try {
    // assignments go by POST: only a write sets the node's variables
    method = parseScript(command).some(s => Executor.methodOf(s) === 'POST' || s.kind === 'assign') ? 'POST' : 'GET'
  } catch {
    // Not valid here: a GET lets the node explain what is wrong with it.
  }
  // A header cannot hold a newline: a multi-line `< ... >` statement travels on one line.
  const headers: Record<string, string> = { command: command.replace(/\s*\n\s*/g, ' '), 'User-Agent': `ledgermesh/${VERSION}` }
  if (opts.token !== undefined && opts.token !== '') headers.Authorization = `Bearer ${opts.token}`
  let response: Response
  try {
    response = await fetch(new URL('/', opts.node), { method, headers, signal: AbortSignal.timeout(30_000) })
  } catch (err) {
    return { ok: false, status: 0, text: `cannot reach ${opts.node}: ${errorMessage((err as { cause?: unknown }).cause ?? err)}` }
  }
  const body = await response.text()
  if (response.ok) return { ok: true, status: response.status, text: body }
  let message = body
  try { message = (JSON.parse(body) as { message?: string }).message ?? body } catch { /* not JSON */ }
  return { ok: false, status: response.status, text: `${response.status}: ${message}` }
}

async function sendCommand (command: string, opts: { node: string, token?: string }): Promise<void> {
  const reply = await requestCommand(command, opts)
  if (!reply.ok) fail(reply.text, EXIT_FAILURE)
  if (reply.text !== '') process.stdout.write(reply.text.endsWith('\n') ? reply.text : reply.text + '\n')
}

/** The banner of a remote REPL: the node's admission notice (`get status`), when its master does not admit it. */
async function admissionBanner (opts: { node: string, token?: string }): Promise<string | undefined> {
  const reply = await requestCommand('get status where format=json', opts)
  if (!reply.ok) return undefined
  try {
    const admission = (JSON.parse(reply.text) as { admission?: { admitted?: boolean, message?: string } }).admission
    return admission?.admitted === false ? admission.message : undefined
  } catch {
    return undefined
  }
}

/** A REPL on a remote node: each statement goes over REST; `exit` or `quit` detaches. */
async function attach (opts: { node: string, token?: string }): Promise<void> {
  const banner = await admissionBanner(opts)
  if (banner !== undefined) process.stdout.write(`${banner}\n`)
  const terminal = process.stdin.isTTY === true
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal })
  const prompt = `LM ${new URL(opts.node).host} > `
  rl.setPrompt(prompt)
  if (terminal) rl.prompt()
  let buffer = ''
  for await (const line of rl) {
    buffer = buffer === '' ? line : `${buffer}\n${line}`
    if (needsMoreInput(buffer)) continue
    const text = buffer.trim()
    buffer = ''
    if (text === 'exit' || text === 'quit') break
    if (text !== '' && !text.startsWith('#')) {
      const reply = await requestCommand(text, opts)
      if (reply.ok) { if (reply.text !== '') process.stdout.write(reply.text.endsWith('\n') ? reply.text : reply.text + '\n') } else process.stderr.write(`Error: ${reply.text}\n`)
    }
    if (terminal) rl.prompt()
  }
  rl.close()
}

const program = new Command()
  .name('ledgermesh')
  .description('A peer-to-peer network of nodes coordinated by a replicated, signed metadata ledger')
  .version(VERSION)
  .showHelpAfterError()

program.command('start')
  .description('start a node from its env config file')
  .requiredOption('-c, --config <file>', 'env file (AnyLog keys: NODE_TYPE, NODE_NAME, LEDGER_CONN, ...)')
  .option('--home <dir>', 'data directory (identity, ledger replica, history); default ~/.ledgermesh/<NODE_NAME>')
  .option('--repl', 'read commands from stdin even when it is not a terminal')
  .addOption(new Option('--script <file>', 'start-up script instead of scripts/<role>.al').hideHelp())
  .action(startNode)

program.command('cmd')
  .description('send one command to a running node and print the result')
  .requiredOption('-n, --node <url>', 'the node\'s REST address, e.g. http://127.0.0.1:32049')
  .option('-t, --token <token>', 'bearer token for write commands (default $REST_TOKEN)', process.env.REST_TOKEN)
  .argument('<command>', 'the command, e.g. "blockchain get master"')
  .action(async (command: string, opts: { node: string, token?: string }) => { await sendCommand(command, opts) })

program.command('attach')
  .description('open a REPL on a running node (each statement is sent over REST)')
  .requiredOption('-n, --node <url>', 'the node\'s REST address, e.g. http://127.0.0.1:32049')
  .option('-t, --token <token>', 'bearer token for write commands (default $REST_TOKEN)', process.env.REST_TOKEN)
  .action(attach)

program.command('keygen')
  .description('print a new random key: `keygen network` gives a NETWORK_KEY (64 hex characters, 32 bytes)')
  .addArgument(new Argument('<kind>', 'the kind of key').choices(['network']))
  .option('--swarm', 'print it as a swarm key file (/key/swarm/psk/1.0.0/, /base16/, the key) instead')
  .action((_kind: string, opts: { swarm?: boolean }) => {
    const hex = randomBytes(32).toString('hex')
    process.stdout.write(opts.swarm === true ? `${SWARM_KEY_HEADER}\n/base16/\n${hex}\n` : `${hex}\n`)
  })

program.command('check')
  .description('parse scripts without running them; print every error (exit 1 when any) and every line that would not run here (warnings) with its file, line and column')
  .argument('<files...>', 'script files (.al)')
  .option('-q, --quiet', 'print only the errors and the summary')
  .action(async (files: string[], opts: { quiet?: boolean }) => {
    const { checkScript } = await import('../commands/check.js')
    let statements = 0
    let errors = 0
    let warnings = 0
    const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`
    for (const file of files) {
      let text: string
      try {
        text = readFileSync(file, 'utf8')
      } catch (err) {
        process.stdout.write(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}\n`)
        errors++
        continue
      }
      const result = checkScript(text, file)
      statements += result.statements
      errors += result.problems.length
      warnings += result.warnings.length
      for (const p of result.problems) process.stdout.write(`${file}:${p.line}:${p.column}: ${p.message}\n`)
      for (const w of result.warnings) process.stdout.write(`${file}:${w.line}:${w.column}: warning: ${w.message}\n`)
      if (opts.quiet !== true) process.stdout.write(`${file}: ${result.statements} statements, ${plural(result.problems.length, 'error')}, ${plural(result.warnings.length, 'warning')}\n`)
    }
    // an error stops the script where it runs; a warning is a line that would not run here
    process.stdout.write(`${plural(files.length, 'file')}, ${statements} statements, ${plural(errors, 'error')}, ${plural(warnings, 'warning')}${errors + warnings === 0 ? ': clean (every line runs here)' : ''}\n`)
    process.exitCode = errors > 0 ? EXIT_FAILURE : 0
  })

program.command('verify')
  .description('check offline that a checkpoint is signed by a master key and, with --proof, that an entry (and --policy, the policy it holds) is in its log; exit 0, or 1 with the reason')
  .option('--checkpoint <file>', 'the signed checkpoint (GET /checkpoint, get checkpoint); default: the one the proof carries')
  .requiredOption('--key <key...>', 'a master\'s Ed25519 public key (64 hex digits) or verifier key (name+id+key); repeat for several masters')
  .option('--proof <file>', 'an inclusion proof (GET /v1/proof/inclusion, blockchain prove) as JSON')
  .option('--policy <file>', 'the policy (JSON) the proven entry must hold')
  .option('--witness <vkey...>', 'a witness\'s verifier key (its GET /witness vkey) whose cosignature the checkpoint must carry; repeat for several')
  .option('--quorum <n>', 'how many of the --witness keys must have cosigned (default: all)', (v: string) => Number(v))
  .action(async (opts: { checkpoint?: string, key: string[], proof?: string, policy?: string, witness?: string[], quorum?: number }) => {
    const { verifyOffline } = await import('../ledger/tlog/offline-verify.js')
    const read = (file: string, what: string): string => {
      try { return readFileSync(file, 'utf8') } catch (err) { return fail(`${what} ${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`, EXIT_FAILURE) }
    }
    const json = (file: string, what: string): any => {
      try { return JSON.parse(read(file, what)) } catch (err) { return fail(`${what} ${file}: not JSON: ${errorMessage(err)}`, EXIT_FAILURE) }
    }
    try {
      const verdict = verifyOffline({
        checkpoint: opts.checkpoint !== undefined ? read(opts.checkpoint, '--checkpoint') : undefined,
        keys: opts.key,
        proof: opts.proof !== undefined ? json(opts.proof, '--proof') : undefined,
        policy: opts.policy !== undefined ? json(opts.policy, '--policy') : undefined,
        witnesses: opts.witness,
        quorum: opts.quorum
      })
      for (const line of verdict.verified) process.stdout.write(`verified: ${line}\n`)
    } catch (err) {
      fail(`not verified: ${errorMessage(err)}`, EXIT_FAILURE)
    }
  })

program.command('export-tiles')
  .description('write a node\'s log as the static files of a C2SP tiled log (checkpoint, tile/...), with its latest snapshot (snapshot/...), for a web server to serve')
  .argument('<dir>', 'where to write them')
  .requiredOption('-n, --node <url>', 'the node\'s REST address, e.g. http://127.0.0.1:32049')
  .option('-t, --token <token>', 'bearer token, when the node needs one for reads (default $REST_TOKEN)', process.env.REST_TOKEN)
  .action(async (dir: string, opts: { node: string, token?: string }) => {
    const { exportTiles } = await import('./export-tiles.js')
    try {
      const { size, files, bytes, snapshot } = await exportTiles(opts.node, dir, { token: opts.token })
      process.stdout.write(`exported the log at tree size ${size}: ${files} files, ${bytes} bytes, in ${dir}\n`)
      process.stdout.write(snapshot !== undefined ? `with the snapshot at size ${snapshot.size} (${snapshot.chunks} chunk${snapshot.chunks === 1 ? '' : 's'})\n` : 'the node has no snapshot yet: tiles only\n')
    } catch (err) {
      fail(`export-tiles: ${errorMessage(err)}`, EXIT_FAILURE)
    }
  })

program.command('demo')
  .description('start a demo network on loopback (master, slave, two workers, profiles) with the master\'s REPL (npm start)')
  .option('--home <dir>', 'demo data directory, reset on every run', join(PACKAGE_ROOT, '.lm-home', 'demo'))
  .option('--port <port>', 'base port: master p2p; REST +1, slave +100, workers +200 and +300', '32048')
  .option('--repl', 'read commands from stdin even when it is not a terminal')
  .option('--standalone', 'the same network in one process: one node holding the master, slave and worker roles (NODE_TYPE=master,slave,worker)')
  .action(async (opts: { home: string, port: string, repl?: boolean, standalone?: boolean }) => {
    const port = Number(opts.port)
    if (!Number.isInteger(port) || port < 1024 || port > 65_000) fail(`--port ${opts.port}: expected a base port from 1024 to 65000`, EXIT_CONFIG)
    const { runDemo } = await import('./demo.js')
    await runDemo({ home: opts.home, port, repl: opts.repl, standalone: opts.standalone })
  })

program.parseAsync(process.argv).catch(err => {
  fail(errorMessage(err), EXIT_FAILURE)
})
