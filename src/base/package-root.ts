import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

/**
 * The package's root directory (package.json, scripts/, dist/), found by walking up from this
 * module: it is src/base in the sources, dist/base once compiled and dist/bin in the bundled
 * binary, so no fixed number of `..` fits all three.
 */
export const PACKAGE_ROOT = findPackageRoot(import.meta.dirname)

function findPackageRoot (from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json')
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'ledgermesh') return dir
    if (dirname(dir) === dir) throw new Error(`no ledgermesh package.json above ${from}`)
  }
}
