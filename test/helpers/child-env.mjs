// Loaded into every test process (tap's node-arg) before the test: the processes a test starts
// (ledgermesh nodes, runners, the CLI) must not inherit tap's instrumentation. tap loads its
// process-info hook into each test through NODE_OPTIONS, and the hook adds itself back to the
// environment of every process spawned after (through process-on-spawn). In a ledgermesh node it
// costs an off-thread module loader and source-map parsing on every module: more CPU at start-up
// than the node's own. Coverage is off in this project, so nothing reads what it would record.
// (npm test's lean-tap.mjs, also in NODE_OPTIONS, is left out of them the same way.)
const spawnHooks = globalThis[Symbol.for('process-on-spawn@*:singletonId')]
if (spawnHooks !== undefined) spawnHooks.listeners.splice(0)

const options = (process.env.NODE_OPTIONS ?? '').split(/\s+(?=(?:[^"]*"[^"]*")*[^"]*$)/)
  .filter(option => option !== '' && !option.includes('@tapjs/processinfo') && !option.includes('lean-tap.mjs'))
if (options.length === 0) delete process.env.NODE_OPTIONS
else process.env.NODE_OPTIONS = options.join(' ')
for (const key of Object.keys(process.env)) {
  if (key.startsWith('_TAPJS_PROCESSINFO_')) delete process.env[key]
}
