// Bundles the compiled node (dist/node/cli.js) into dist/bin/cli.cjs, with the two
// files it starts as threads or processes beside it (verify-worker.cjs, reaper-main.cjs): one
// file to load instead of some 1,500 modules, so a node starts in about half the CPU time
// (module resolution and file reads were most of it). Part of `npm run build`, after tsc.
// Packages left out of the bundle: RUNTIME_EXTERNALS in node-bundle.mjs.
//
// CommonJS, not ESM: a script's compiled code can be cached and handed back to V8 on every
// supported Node (src/node/code-cache.ts), an ES module's only on Node 22 and later.
import { rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { NODE_BUNDLE, RUNTIME_EXTERNALS } from './node-bundle.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const dist = join(root, 'dist')
const outdir = join(dist, 'bin')
rmSync(outdir, { recursive: true, force: true })
const common = {
  outdir,
  ...NODE_BUNDLE,
  format: 'cjs',
  splitting: false,
  banner: {},
  outExtension: { '.js': '.cjs' },
  // what the sources read of import.meta, in CommonJS terms (a file finds its neighbours, as
  // verify-worker.cjs, by its own name and folder)
  define: { 'import.meta.dirname': '__dirname', 'import.meta.filename': '__filename', 'import.meta.resolve': 'require.resolve' },
  minifyWhitespace: true,
  minifySyntax: true,
  // the packages' licence comments go to cli.cjs.LEGAL.txt beside it: one of them has a
  // non-ASCII letter, which made V8 hold the whole 3.8 MB source as two-byte characters
  legalComments: 'external',
  // tsx: only named by the sources' path for running under TypeScript, never in the bundle
  external: [...RUNTIME_EXTERNALS, 'tsx'],
  metafile: true
}
const builds = await Promise.all([
  // The CLI is CommonJS's module wrapper whole (a function expression), as
  // src/node/code-cache.ts runs it: wrapping it there would hold a second copy of the 3.8 MB
  // source in memory. So `node dist/bin/cli.cjs` does nothing: dist/bin/ledgermesh.js runs it.
  build({
    ...common,
    entryPoints: { cli: join(dist, 'node', 'cli.js') },
    banner: { js: '(function (exports, require, module, __filename, __dirname) {' },
    footer: { js: '})' }
  }),
  // the files it starts as a thread and as a process, run by Node as they are
  build({
    ...common,
    entryPoints: {
      'verify-worker': join(dist, 'policies', 'verify-worker.js'),
      'reaper-main': join(dist, 'services', 'operator', 'reaper-main.js')
    }
  })
])
// import() of a package left out of the bundle stays an import() in CommonJS, and a script read
// back from the code cache cannot run one on Node 20: the sources import those packages statically.
for (const [output, { imports }] of builds.flatMap(({ metafile }) => Object.entries(metafile.outputs))) {
  const dynamic = imports.filter(i => i.kind === 'dynamic-import' && i.external === true)
  if (dynamic.length > 0) throw new Error(`${output}: import() of ${dynamic.map(i => i.path).join(', ')}; import it statically`)
}

// The entry users and tests run: the bundled CLI through V8's code cache (src/node/code-cache.ts).
writeFileSync(join(outdir, 'ledgermesh.js'), `import { runWithCodeCache } from '../node/code-cache.js'
runWithCodeCache(new URL('./cli.cjs', import.meta.url).pathname)
`)
