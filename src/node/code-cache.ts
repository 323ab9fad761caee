// Runs the bundled node (dist/bin/cli.cjs) with V8's code cache, on every supported Node.
//
// Parsing and compiling the 3.8 MB bundle, and then compiling the functions a start-up calls,
// was about a third of a node's start-up CPU (0.75 s on Node 20 here; 0.55 s from the cache).
// Node 22.1 and later have a compile cache of their own (module.enableCompileCache), and
// v8-compile-cache does it for CommonJS on Node 20, but both cache a module's code as it is
// right after compiling it, before any of its functions ran: measured here, that saves only
// half as much (0.64 s). So the cache is made here, from the running script, once the node has
// started: it then holds the functions start-up compiled too.
import { createHash } from 'node:crypto'
import { lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import module, { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { Script } from 'node:vm'

/** How long after loading the bundle its cache is written (or at exit, if that comes first). */
export const CACHE_AFTER_MS = 1_000

/** Where the caches are: private to this user, as a cache is code this process will run. */
export function codeCacheDir (): string {
  return join(tmpdir(), `ledgermesh-code-cache-${process.getuid?.() ?? 'user'}`)
}

export interface CodeCacheOptions {
  /** default codeCacheDir() */
  dir?: string
  /** default CACHE_AFTER_MS */
  writeAfterMs?: number
}

/** What happened to the cache: `used` (read and accepted), `rejected` by V8, `missing`, or `off`. */
export type CodeCacheResult = 'used' | 'rejected' | 'missing' | 'off'

/**
 * Runs a CommonJS module written as a function expression (CommonJS's module wrapper around
 * a bundle that requires only Node's built-ins and packages, and has no import()) with V8's
 * code cache, and writes a new cache when there was none or V8 rejected it (another V8 version
 * or other flags). A cache is named by the file and its path, the Node version, the
 * architecture, and the file's size and modification time, so a rebuilt bundle never meets an
 * old cache.
 * NODE_DISABLE_COMPILE_CACHE (Node's own switch) turns it off. A cache that cannot be read or
 * written is no error: the file is then compiled as `require` would.
 */
export function runWithCodeCache (file: string, options: CodeCacheOptions = {}): CodeCacheResult {
  const source = readFileSync(file, 'utf8')
  const dir = options.dir ?? codeCacheDir()
  const off = process.env.NODE_DISABLE_COMPILE_CACHE !== undefined || !ownDirectory(dir)
  // one cache per checkout: two on one machine (a CI clone beside a working copy) keep theirs
  const place = createHash('sha256').update(file).digest('hex').slice(0, 12)
  const prefix = `${basename(file)}-${place}-${process.version}-${process.arch}-`
  // the build writes a new file: its size and time tell builds apart without hashing 3.8 MB
  const stat = statSync(file)
  const cacheFile = join(dir, `${prefix}${stat.size}-${Math.round(stat.mtimeMs)}.bin`)
  let cachedData: Buffer | undefined
  if (!off) {
    try { cachedData = readFileSync(cacheFile) } catch { cachedData = undefined }
  }
  // The file is CommonJS's wrapper itself, `(function (exports, require, module, __filename,
  // __dirname) { ... })`, so the source is held once, not once more wrapped. It has no import()
  // (scripts/build-bin.mjs refuses one): a script read back from the cache in another process
  // has no dynamic-import callback on Node 20.
  const script = new Script(source, { filename: file, cachedData })
  const result: CodeCacheResult = off ? 'off' : cachedData === undefined ? 'missing' : script.cachedDataRejected === true ? 'rejected' : 'used'
  if (result === 'missing' || result === 'rejected') writeLater(script, dir, prefix, cacheFile, options.writeAfterMs ?? CACHE_AFTER_MS)
  // the packages the bundle leaves to require (pino, classic-level): Node 22.1 and later cache them
  if (!off) (module as { enableCompileCache?: () => void }).enableCompileCache?.()
  const cjsModule = { exports: {}, filename: file, id: file, loaded: false }
  const run = script.runInThisContext() as (...args: unknown[]) => void
  run.call(cjsModule.exports, cjsModule.exports, createRequire(file), cjsModule, file, dirname(file))
  cjsModule.loaded = true
  return result
}

/** The cache directory exists (made if not), belongs to this user, and no one else may write in it. */
function ownDirectory (dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const stat = lstatSync(dir)
    return stat.isDirectory() && (process.getuid === undefined || stat.uid === process.getuid()) && (stat.mode & 0o022) === 0
  } catch {
    return false
  }
}

function writeLater (script: Script, dir: string, prefix: string, cacheFile: string, afterMs: number): void {
  let written = false
  const write = (): void => {
    if (written) return
    written = true
    process.off('exit', write)
    try {
      // another process may be writing the same cache: each writes its own file, then renames
      const partial = `${cacheFile}.${process.pid}`
      writeFileSync(partial, script.createCachedData(), { mode: 0o600 })
      renameSync(partial, cacheFile)
      // the caches of earlier builds of the same file, for this Node
      for (const other of readdirSync(dir)) {
        if (other.startsWith(prefix) && other.endsWith('.bin') && other !== basename(cacheFile)) rmSync(join(dir, other), { force: true })
      }
    } catch {
      // a cache is an optimisation: a full disk or a removed directory only costs the next start
    }
  }
  setTimeout(write, afterMs).unref()
  process.on('exit', write)
}
