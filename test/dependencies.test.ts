import t from 'tap'
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const DEPCRUISE = join(ROOT, 'node_modules', '.bin', 'depcruise')

/**
 * Runtime dependencies that src/ loads by name rather than by an import (so no import graph
 * shows them), each with the file that names it: the test checks the name is still there.
 */
const LOADED_BY_NAME: Record<string, { file: string, text: string }> = {
  // pino loads a transport by its package name, in a worker thread
  'pino-pretty': { file: 'src/base/logger.ts', text: "target: 'pino-pretty'" }
}

/** `@scope/name/sub/path.js` -> `@scope/name`; `name/sub` -> `name`. */
function packageOf (specifier: string): string {
  const parts = specifier.split('/')
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]
}

/** Every npm package src/ imports (values or types), from dependency-cruiser's module graph. */
async function packagesImportedBySrc (): Promise<Set<string>> {
  const { stdout } = await promisify(execFile)(DEPCRUISE, ['src', '--config', '.dependency-cruiser.cjs', '--output-type', 'json'],
    { cwd: ROOT, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 })
  const graph = JSON.parse(stdout) as { modules: Array<{ dependencies: Array<{ module: string, dependencyTypes: string[] }> }> }
  const packages = new Set<string>()
  for (const module of graph.modules) {
    for (const dependency of module.dependencies) {
      if (dependency.dependencyTypes.some(type => type.startsWith('npm'))) packages.add(packageOf(dependency.module))
    }
  }
  return packages
}

t.test('every runtime dependency in package.json is used by src/', async t => {
  const manifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }
  const imported = await packagesImportedBySrc()
  t.ok(imported.has('libp2p') && imported.has('fastify'), 'the import graph of src/ was read')
  const unused = Object.keys(manifest.dependencies).filter(name => !imported.has(name) && LOADED_BY_NAME[name] === undefined)
  t.same(unused, [], 'no dependency that src/ never imports (devDependencies are for tests, benchmarks and the build)')
  for (const [name, { file, text }] of Object.entries(LOADED_BY_NAME)) {
    t.ok(manifest.dependencies[name] !== undefined, `${name} is a dependency`)
    t.ok((await readFile(join(ROOT, file), 'utf8')).includes(text), `${file} still loads ${name} by name`)
  }
})

t.test('every version is pinned', async t => {
  const manifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>
  const loose = ['dependencies', 'devDependencies', 'overrides'].flatMap(field =>
    Object.entries(manifest[field] ?? {}).filter(([, version]) => !/^\d+\.\d+\.\d+$/.test(version)).map(([name, version]) => `${field}: ${name}@${version}`))
  t.same(loose, [], 'exact versions only (package-lock.json pins the rest)')
})
