import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { launchBrowser } from './helpers/browser.js'
import { insert, profile, startMaster, startSlave, startWorker, waitRunning } from './helpers/fleet.js'
import { ROOT, startNode } from './helpers/node-process.js'

// The web console (/ui) in a real browser: the network with every node's head, the profiles
// on their workers, and a drain showing up without a reload. The screenshot it takes is the
// one in docs/rest-api.md (UPDATE_SCREENSHOT=1 writes it there).

t.test('the console shows the network and the allocation, live', async t => {
  const master = await startMaster(t, 'ui-master')
  await startSlave(t, master, 'ui-slave', 4)
  const workers = [
    await startWorker(t, master, { name: 'ui-worker-1', slave: 'ui-slave', slots: 2, kinds: ['demo'] }),
    await startWorker(t, master, { name: 'ui-worker-2', slave: 'ui-slave', slots: 2, kinds: ['demo'] })
  ]
  await insert(master, { subaccount: { name: 'acme', account: 'acme-inc' } })
  // a secret in a profile's settings: sealed on the ledger, so never on the page
  for (const name of ['linkedin-1', 'linkedin-2']) await profile(master, name, 'demo', 'acme', { password: 'console-secret-pw' })
  const browser = await launchBrowser(t)
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } })
  await page.goto(`${master.url}/ui`)

  for (const name of ['ui-master', 'ui-slave', 'ui-worker-1', 'ui-worker-2']) {
    await page.locator(`tr[data-node="${name}"]`).waitFor({ timeout: 30_000 })
  }
  t.equal(await page.locator('#rates figure[data-chart]').count(), 3, 'charts of inserts, sync entries and lag')
  const heads = await page.locator('tr[data-node] td[data-field="head"]').allTextContents()
  t.ok(heads.length === 4 && heads.every(h => /^\d+$/.test(h)), `every node's head is shown (${heads.join(', ')})`)
  const placedOn = async (name: string): Promise<string> => await page.locator(`tr[data-profile="${name}"] td[data-field="worker"]`).textContent({ timeout: 30_000 }) ?? ''
  await page.waitForFunction(() => [...document.querySelectorAll('tr[data-profile] td[data-field="worker"]')].filter(td => td.textContent !== '').length === 2, undefined, { timeout: 30_000 })
  const before = new Map([['linkedin-1', await placedOn('linkedin-1')], ['linkedin-2', await placedOn('linkedin-2')]])
  t.ok([...before.values()].every(w => w.startsWith('ui-worker-')), `both profiles placed (${[...before.values()].join(', ')})`)
  await page.waitForFunction(() => [...document.querySelectorAll('tr[data-profile] td[data-field="process"]')].filter(td => td.textContent?.startsWith('running on ui-worker-') === true).length === 2, undefined, { timeout: 30_000 })
  t.pass('each profile\'s process shows as its worker reported it')

  // a drain on a worker that runs one: the page shows its profiles move, without a reload
  const drained = [...before.values()][0]
  const moving = [...before].filter(([, w]) => w === drained).map(([name]) => name)
  const other = workers.find(w => w.name !== drained)!
  await page.click(`tr[data-node="${drained}"] button[data-action="drain"]`)
  await page.locator(`tr[data-node="${drained}"] .draining`).waitFor({ timeout: 30_000 })
  await page.waitForFunction(({ names, to }) => names.every(n => document.querySelector(`tr[data-profile="${n}"] td[data-field="worker"]`)?.textContent === to), { names: moving, to: other.name }, { timeout: 60_000 })
  t.pass(`${moving.join(', ')} moved to ${other.name} on the page`)
  await waitRunning(other, ['linkedin-1', 'linkedin-2'])
  // a worker's own console (linked from the master's): its processes with restarts and uptime
  t.equal(await page.locator(`tr[data-node="${other.name}"] a`).getAttribute('href'), `http://127.0.0.1:${other.restPort}/ui/`, 'the master links each node\'s own console')
  const own = await browser.newPage({ viewport: { width: 1280, height: 800 } })
  await own.goto(`${other.url}/ui/`)
  await own.locator('tr[data-profile="linkedin-1"] td[data-field="uptime"]').filter({ hasText: /\d+ (s|min|h)$/ }).waitFor({ timeout: 30_000 })
  t.pass('the worker\'s console shows each process with its restarts and uptime')
  // resumed from the console: the drain policy is deleted and the worker takes profiles again
  await page.click(`tr[data-node="${drained}"] button[data-action="resume"]`)
  await page.locator(`tr[data-node="${drained}"] button[data-action="drain"]`).waitFor({ timeout: 30_000 })
  t.equal(await page.locator(`tr[data-node="${drained}"] .draining`).count(), 0, 'resumed from the console')

  // the ledger: a search with the command language's where conditions, and a bad one
  await page.selectOption('#ledger select', 'profile')
  await page.fill('#ledger input[name="where"]', 'name = linkedin-1')
  await page.click('#ledger button[type="submit"]')
  await page.locator('#ledger tr[data-policy="linkedin-1"]').waitFor({ timeout: 15_000 })
  t.equal(await page.locator('#ledger [data-field="found"]').textContent(), '1 found', 'a search finds the policy by a field')
  await page.click('#ledger tr[data-policy="linkedin-1"] summary')
  const shown = await page.locator('#ledger tr[data-policy="linkedin-1"] pre').textContent() ?? ''
  t.match(shown, /"settings"/, 'the policy\'s JSON is shown')
  await page.locator('#ledger tr[data-policy="linkedin-1"] [data-field="seq"]').filter({ hasText: /^seq \d+$/ }).waitFor({ timeout: 15_000 })
  t.pass('with its seq on the ledger')
  t.notMatch(await page.content(), /console-secret-pw/, 'its settings stay sealed: the secret is nowhere on the page')
  await page.fill('#ledger input[name="where"]', 'name = ')
  await page.click('#ledger button[type="submit"]')
  await page.locator('#ledger [role="alert"]').waitFor({ timeout: 15_000 })
  t.match(await page.locator('#ledger [role="alert"]').textContent(), /\S/, 'a bad condition shows the parser\'s error')
  await page.fill('#ledger input[name="where"]', 'kind = demo')
  await page.click('#ledger button[type="submit"]')
  await page.locator('#ledger [data-field="found"]').filter({ hasText: '2 found' }).waitFor({ timeout: 15_000 })

  // writes: a member with a REST token; its editor checks as you type, and refuses visibly
  // without the token
  const member = await startNode(t, { type: 'member', name: 'ui-member', env: { LEDGER_CONN: master.ledgerConn, REST_TOKEN: 'console-token' } })
  const editor = await browser.newPage({ viewport: { width: 1280, height: 800 } })
  await editor.goto(`${member.url}/ui/`)
  await editor.fill('#write textarea', '{"sensor": {"name": "s-1", "slots": ')
  await editor.locator('#write [data-field="check"]').filter({ hasText: 'not JSON' }).waitFor({ timeout: 15_000 })
  t.ok(await editor.locator('#write button[type="submit"]').isDisabled(), 'nothing to send while the JSON does not parse')
  await editor.fill('#write textarea', '{"worker": {"name": "w-9", "slots": "many"}}')
  await editor.locator('#write [data-field="check"]').filter({ hasText: 'slots' }).waitFor({ timeout: 15_000 })
  t.pass('a schema error is shown before sending, naming the field')
  await editor.fill('#write textarea', '{"sensor": {"name": "from-the-console"}}')
  await editor.locator('#write [data-field="check"]').filter({ hasText: 'a valid sensor policy' }).waitFor({ timeout: 15_000 })
  await editor.click('#write button[type="submit"]')
  await editor.locator('#write [role="alert"]').filter({ hasText: 'REST_TOKEN' }).waitFor({ timeout: 15_000 })
  t.pass('a write without the token is refused with a visible message')
  await editor.fill('#write input[name="token"]', 'console-token')
  await editor.click('#write button[type="submit"]')
  await editor.locator('#write [data-field="outcome"]').filter({ hasText: /inserted: id .*seq \d+/ }).waitFor({ timeout: 15_000 })
  t.pass('with the token it is inserted, through the member, ordered by the master')
  await editor.reload()
  await editor.locator('tr[data-node="ui-member"]').waitFor({ timeout: 15_000 })
  t.notMatch(await editor.content(), /console-token/, 'the node\'s REST token is nowhere on its page (the field is the tab\'s own, and a password field)')

  // deleted from the master's console (its key may delete any policy)
  page.on('dialog', dialog => { void dialog.accept() })
  await page.selectOption('#ledger select', 'sensor')
  await page.fill('#ledger input[name="where"]', 'name = from-the-console')
  await page.click('#ledger button[type="submit"]')
  await page.locator('#ledger tr[data-policy="from-the-console"]').waitFor({ timeout: 15_000 })
  await page.click('#ledger tr[data-policy="from-the-console"] button[data-action="delete"]')
  await page.locator('#ledger tr[data-policy="from-the-console"]').waitFor({ state: 'detached', timeout: 15_000 })
  t.equal((await master.ok('blockchain get sensor where name = from-the-console bring.count')).text, '0', 'deleted from the ledger')

  // the README's picture of the console: written over docs/console.png only when asked, so a test
  // run leaves the working tree as it found it
  const screenshot = await page.screenshot({ fullPage: true })
  if (process.env.UPDATE_SCREENSHOT === '1') writeFileSync(join(ROOT, 'docs', 'console.png'), screenshot)
  const phone = await browser.newPage({ viewport: { width: 390, height: 844 } })
  await phone.goto(`${master.url}/ui/`)
  await phone.locator('tr[data-node="ui-master"]').waitFor({ timeout: 30_000 })
  const { overflow, wide } = await phone.evaluate(() => {
    const width = document.documentElement.clientWidth
    // what sticks out, outside the tables' own scrolling boxes
    const wide = [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > width + 1 && (e.closest('.table') === null || getComputedStyle(e).position === 'absolute')).map(e => `${e.tagName.toLowerCase()}${e.id !== '' ? '#' + e.id : ''}.${e.className} (${Math.round(e.getBoundingClientRect().right)} px)`)
    return { overflow: document.documentElement.scrollWidth - width, wide: wide.slice(0, 5) }
  })
  t.equal(overflow, 0, `on a phone-sized screen the page itself does not scroll sideways (its tables do)${wide.length > 0 ? `; too wide: ${wide.join(', ')}` : ''}`)
})
