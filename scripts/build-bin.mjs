// Bundles the compiled node (dist/node/cli.js) into dist/bin/ledgermesh.js, with the two
// files it starts as threads or processes beside it (verify-worker.js, reaper-main.js): one
// file to load instead of some 1,500 modules, so a node starts in about half the CPU time
// (module resolution and file reads were most of it). Part of `npm run build`, after tsc.
//
// Left out of the bundle, loaded from node_modules at run time: classic-level (a native addon
// found beside its own package), pino (its transports run in worker threads it starts from its
// own files, pino-pretty among them) and pg-native (pg's optional native driver, not installed).
import { rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const dist = join(root, 'dist')
const outdir = join(dist, 'bin')
rmSync(outdir, { recursive: true, force: true })
await build({
  entryPoints: {
    ledgermesh: join(dist, 'node', 'cli.js'),
    'verify-worker': join(dist, 'policies', 'verify-worker.js'),
    'reaper-main': join(dist, 'services', 'operator', 'reaper-main.js')
  },
  outdir,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  splitting: true,
  minifyWhitespace: true,
  minifySyntax: true,
  external: ['classic-level', 'pino', 'pino-pretty', 'pg-native'],
  // CommonJS packages inside an ESM bundle call require() for Node's built-ins
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: 'warning'
})
