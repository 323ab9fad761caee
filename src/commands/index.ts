export * from './ast.js'
export { parseScript, parseCommandLine } from './parser.js'
export { COMMANDS, commandSpec, type CommandSpec } from './catalog.js'
