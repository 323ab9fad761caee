import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { docsPages } from './helpers/docs.js'
import { startNode, ROOT } from './helpers/node-process.js'

/** Every `curl` line in the sh blocks of README.md and docs/, continuation lines joined. */
function documentedCurls (): string[] {
  const blocks = [join(ROOT, 'README.md'), ...docsPages(ROOT)].flatMap(file => [...readFileSync(file, 'utf8').matchAll(/```sh\n([\s\S]*?)```/g)].map(m => m[1].replace(/\\\n\s*/g, '')))
  return blocks.flatMap(b => b.split('\n')).map(l => l.trim()).filter(l => l.startsWith('curl '))
}

t.test('the curl examples of README.md and docs/ work against a running node', async t => {
  const token = 'readme-token-1'
  const node = await startNode(t, { type: 'master', name: 'readme-m', env: { REST_TOKEN: token } })
  const curls = documentedCurls()
  t.ok(curls.length >= 8, `${curls.length} examples found`)
  for (const line of curls) {
    const command = line.replaceAll('127.0.0.1:32049', `127.0.0.1:${node.restPort}`).replace(/^curl /, 'curl --fail-with-body --max-time 20 ')
    let out = ''
    t.doesNotThrow(() => {
      out = execFileSync('bash', ['-c', command], { encoding: 'utf8', env: { ...process.env, REST_TOKEN: token } })
    }, line)
    t.ok(out.trim().length > 0, `answers: ${line.slice(0, 80)}`)
    t.notMatch(out, /"error":/, 'without an error')
  }
})
