import { createInterface, type Interface } from 'node:readline'
import { appendFile, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { isLedgerMeshError, errorMessage } from '../base/errors.js'
import { COMMANDS } from '../commands/catalog.js'
import type { LedgerMeshNode } from './node.js'

const HISTORY_FILE = 'repl_history'
const HISTORY_SIZE = 1000

/**
 * The node's REPL: reads commands from stdin, runs them through the node's executor and
 * prints each result on stdout (errors on stderr). Statements may span lines: `< ... >`
 * and `{ ... }` blocks are read until they close. Works on a terminal (prompt
 * `LM <name> >`, history, tab completion) and on piped stdin (no prompt). Its banner is the
 * node's admission notice, when its master does not admit it (src/node/admission-notice.ts).
 */
export async function runRepl (node: LedgerMeshNode, opts: { input?: NodeJS.ReadableStream, output?: NodeJS.WritableStream } = {}): Promise<void> {
  const input = opts.input ?? process.stdin
  const output = opts.output ?? process.stdout
  const terminal = (input as { isTTY?: boolean }).isTTY === true
  const historyPath = join(node.home, HISTORY_FILE)
  const history = terminal ? await loadHistory(historyPath) : []
  const rl = createInterface({
    input,
    output,
    terminal,
    history,
    historySize: HISTORY_SIZE,
    completer: (line: string) => complete(node, line)
  })
  const prompt = `LM ${node.name} > `
  // Input may end (Ctrl-D, a closed pipe) while a command runs: Node 22+ then refuses prompts.
  let closed = false
  rl.once('close', () => { closed = true })
  const showPrompt = (text: string): void => {
    if (!terminal || closed) return
    rl.setPrompt(text)
    rl.prompt()
  }
  // the banner: a node its master does not admit says so first, and how to get in (as get status does)
  const admission = node.hasLedger ? node.status().admission : undefined
  if (admission?.admitted === false) output.write(`${admission.message}\n`)
  rl.setPrompt(prompt)
  showPrompt(prompt)

  let buffer = ''
  for await (const line of rl) {
    buffer = buffer === '' ? line : `${buffer}\n${line}`
    if (needsMoreInput(buffer)) {
      showPrompt('... ')
      continue
    }
    const text = buffer
    buffer = ''
    if (text.trim() !== '') {
      if (terminal) await appendFile(historyPath, text.replace(/\n/g, ' ') + '\n').catch(() => {})
      await runLine(node, text, output)
    }
    showPrompt(prompt)
  }
  closeQuietly(rl)
}

async function runLine (node: LedgerMeshNode, text: string, output: NodeJS.WritableStream): Promise<void> {
  try {
    const outputs = await node.executor.runForOutput(text, { via: 'repl' })
    for (const out of outputs) {
      if (out.text !== '') output.write(out.text + '\n')
    }
  } catch (err) {
    // An error is the command's, never the node's: report it and keep reading.
    const code = isLedgerMeshError(err) ? err.code : 'internal'
    process.stderr.write(`Error (${code}): ${errorMessage(err)}\n`)
    if (!isLedgerMeshError(err)) node.log.error({ err }, 'command failed unexpectedly')
  }
}

/** True while a `< ... >` statement or a `{ ... }` block is still open. */
export function needsMoreInput (text: string): boolean {
  let depth = 0
  let quote: string | undefined
  let angle = false
  const trimmed = text.trimStart()
  if (trimmed.startsWith('<')) angle = true
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (quote !== undefined) {
      if (c === '\\') i++
      else if (c === quote) quote = undefined
      continue
    }
    if (c === '"' || c === "'") quote = c
    else if (c === '{' || c === '(') depth++
    else if (c === '}' || c === ')') depth--
  }
  if (angle && !text.trimEnd().endsWith('>')) return true
  return depth > 0
}

export function complete (node: LedgerMeshNode, line: string): [string[], string] {
  const lower = line.toLowerCase()
  const commands = COMMANDS.map(c => c.name).filter(name => name.startsWith(lower))
  if (commands.length > 0) return [commands, line]
  // After `blockchain get `, complete the policy types the ledger holds.
  const match = /^(blockchain get\s+)(\S*)$/i.exec(line)
  if (match !== null && node.hasLedger) {
    const types = node.ledger.state.types().filter(t => t.startsWith(match[2]))
    return [types.map(t => match[1] + t), line]
  }
  return [[], line]
}

async function loadHistory (path: string): Promise<string[]> {
  try {
    const lines = (await readFile(path, 'utf8')).split('\n').filter(l => l.trim() !== '')
    return lines.slice(-HISTORY_SIZE).reverse()
  } catch {
    return []
  }
}

function closeQuietly (rl: Interface): void {
  try { rl.close() } catch { /* already closed */ }
}
