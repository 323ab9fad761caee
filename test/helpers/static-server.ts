import { spawn } from 'node:child_process'
import { freePort, waitFor } from './net.js'
import type { Teardown } from './tmp.js'

/**
 * Serves `dir` with a plain static web server that is not ours (Python's http.server) on
 * 127.0.0.1, stopped at teardown; answers its URL once it serves `probe`.
 */
export async function serveDirectory (t: Teardown, dir: string, probe = 'checkpoint'): Promise<string> {
  const port = await freePort()
  const server = spawn('python3', ['-m', 'http.server', String(port), '--bind', '127.0.0.1', '--directory', dir], { stdio: 'ignore' })
  t.teardown(() => { server.kill() })
  const url = `http://127.0.0.1:${port}/`
  await waitFor('the static web server', async () => {
    try { return (await fetch(`${url}${probe}`)).ok ? true : undefined } catch { return undefined }
  })
  return url
}
