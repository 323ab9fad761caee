export * from './ast.js'
export { parseScript, parseScriptLines, parseCommandLine } from './parser.js'
export { COMMANDS, commandSpec, type CommandSpec } from './catalog.js'
