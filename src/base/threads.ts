import { extname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'

/**
 * Starts the worker-thread file `name` that sits beside the calling module, given as its
 * import.meta.filename: `name`.js beside a compiled module, `name`.cjs in the node's bundle
 * (scripts/build-bin.mjs writes each thread's file there). Running from TypeScript sources
 * (tests, benchmarks under tsx), the .ts file is loaded through tsx, since a worker thread does
 * not inherit the main thread's module hooks.
 */
export function spawnThread (callerFilename: string, name: string): Worker {
  const file = join(callerFilename, '..', `${name}${extname(callerFilename)}`)
  if (!file.endsWith('.ts')) return new Worker(file)
  const bootstrap = `import('tsx/esm/api').then(tsx => { tsx.register(); return import(${JSON.stringify(pathToFileURL(file).href)}) })`
  return new Worker(bootstrap, { eval: true })
}
