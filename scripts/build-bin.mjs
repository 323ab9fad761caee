// Bundles the compiled node (dist/node/cli.js) into dist/bin/cli.js, with the two
// files it starts as threads or processes beside it (verify-worker.js, reaper-main.js): one
// file to load instead of some 1,500 modules, so a node starts in about half the CPU time
// (module resolution and file reads were most of it). Part of `npm run build`, after tsc.
// Packages left out of the bundle: RUNTIME_EXTERNALS in node-bundle.mjs.
import { rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { NODE_BUNDLE, RUNTIME_EXTERNALS } from './node-bundle.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const dist = join(root, 'dist')
const outdir = join(dist, 'bin')
rmSync(outdir, { recursive: true, force: true })
await build({
  entryPoints: {
    cli: join(dist, 'node', 'cli.js'),
    'verify-worker': join(dist, 'policies', 'verify-worker.js'),
    'reaper-main': join(dist, 'services', 'operator', 'reaper-main.js')
  },
  outdir,
  ...NODE_BUNDLE,
  minifyWhitespace: true,
  minifySyntax: true,
  external: RUNTIME_EXTERNALS
})

// The entry users and tests run: V8's compile cache first (Node 22.1 and later keep the compiled
// bundle on disk, in the OS temp dir, so a node starts without parsing it again; Node 20 has no
// such cache and skips it; NODE_DISABLE_COMPILE_CACHE=1 turns it off), then the bundled CLI.
writeFileSync(join(outdir, 'ledgermesh.js'), `import module from 'node:module'
module.enableCompileCache?.()
await import('./cli.js')
`)
