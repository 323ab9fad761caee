// Builds the web console (ui/) into dist/ui: one bundle by esbuild (Preact, no CDN: nodes are
// often offline), the page and its stylesheet copied beside it. Part of `npm run build`, so
// `npm install` (prepare) and `npm test` (pretest) build it.
import { copyFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const out = join(root, 'dist', 'ui')
mkdirSync(out, { recursive: true })
await build({
  entryPoints: [join(root, 'ui', 'main.tsx')],
  outfile: join(out, 'app.js'),
  bundle: true,
  minify: true,
  sourcemap: true,
  format: 'esm',
  target: 'es2020',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  logLevel: 'warning'
})
for (const file of ['index.html', 'style.css']) copyFileSync(join(root, 'ui', file), join(out, file))
