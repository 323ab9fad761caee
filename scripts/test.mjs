// `npm test`: tap on the bundled tests (dist/test/*.test.mjs, built by pretest). Arguments
// naming test files may name the sources: `npm test -- test/store.test.ts` runs that file's
// bundle. Other arguments go to tap as they are.
import { spawnSync } from 'node:child_process'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const args = process.argv.slice(2).map(arg =>
  /(^|[\\/])test[\\/][^\\/]+\.test\.ts$/.test(arg) ? join('dist', 'test', basename(arg).replace(/\.ts$/, '.mjs')) : arg)
const tap = spawnSync(join(root, 'node_modules', '.bin', 'tap'), args, { cwd: root, stdio: 'inherit' })
process.exit(tap.status ?? 1)
