import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** The part of a tap test the helpers need: somewhere to register cleanup. */
export interface Teardown {
  teardown (fn: () => unknown): void
}

/** A fresh empty directory under the OS temp dir, removed when the test ends. */
export async function tmpDir (t: Teardown, prefix = 'ledgermesh-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}
