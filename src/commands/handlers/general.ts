import { readFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { resolve } from 'node:path'
import { LedgerMeshError } from '../../base/errors.js'
import { COMMANDS } from '../catalog.js'
import { asText, type Executor } from '../executor.js'
import { EMPTY_OUTPUT, textOutput } from '../output.js'
import type { NodePort } from '../port.js'
import { formatTable } from '../table.js'

import { VERSION } from '../../base/version.js'

/** Commands about the language itself: help, echo, variables, scripts, exit. */
export function registerGeneralCommands (executor: Executor, node: NodePort): void {
  executor.register('help', (cmd, ctx) => {
    const topic = (cmd.rest ?? []).map(v => asText(ctx.executor.resolve(v, ctx.vars.hidingSecrets()))).join(' ').trim().toLowerCase()
    if (topic !== '') {
      const matches = COMMANDS.filter(c => c.name === topic || c.name.startsWith(topic))
      if (matches.length === 0) throw new LedgerMeshError('unknown_command', `no command '${topic}'; type 'help' for the list`)
      return textOutput(matches.map(c => `${c.usage}\n    ${c.summary}`).join('\n'), matches)
    }
    const rows = COMMANDS.map(c => [c.name, c.method, c.summary])
    const extra = [
      '',
      'Language: `x = value` (or `set x = value`) sets a variable, `!x` reads it, `$NAME` reads the env',
      'file, `a + b` joins, `<x = {...}>` spans lines, `#` starts a comment, `if cond then <command>`,',
      '`do <command>` / `else <command>` after an if, `if (cond) { ... } else { ... }`.',
      'Scripts (`process <file>`): `:label:`, `goto label`, `call label` / `return`, `end script`,',
      '`exit scripts`, `on error ignore | goto label | call label | end script`.',
      '`ledgermesh check <file>` parses a script without running it.'
    ]
    return textOutput(formatTable(['Command', 'REST', 'Summary'], rows) + '\n' + extra.join('\n'), COMMANDS)
  })

  // echo and AnyLog's print show what they resolve: secrets show as ***
  for (const name of ['echo', 'print']) {
    executor.register(name, (cmd, ctx) => {
      const shown = ctx.vars.hidingSecrets()
      return textOutput((cmd.rest ?? []).map(v => asText(ctx.executor.resolve(v, shown))).join(' '))
    })
  }

  executor.register('get variables', (_cmd, ctx) => {
    // masked before they are cut to 100 characters (a cut must not leave half a secret that
    // masking no longer recognizes)
    const entries = ctx.executor.shownVariables(ctx.vars)
    return textOutput(formatTable(['Name', 'Value'], entries.map(([k, v]) => [k, asText(v).slice(0, 100)])), Object.fromEntries(entries))
  })

  executor.register('get version', () => textOutput(`ledgermesh version ${VERSION}`))
  executor.register('get hostname', () => textOutput(hostname()))

  executor.register('process', async (cmd, ctx) => {
    const file = resolve(asText(ctx.executor.resolve(cmd.value!, ctx.vars)))
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (err) {
      throw new LedgerMeshError('not_found', `process: cannot read script ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
    }
    const printed = await ctx.executor.runNested(text, ctx, file)
    return printed.length === 0 ? EMPTY_OUTPUT : textOutput(printed.join('\n'))
  })

  executor.register('exit node', () => {
    // Answer first, then stop: the REPL and REST callers get their reply before shutdown.
    setImmediate(() => { node.exit(0) })
    return textOutput('Node is stopping', { stopping: true })
  })
}
