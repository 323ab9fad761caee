import { existsSync } from 'node:fs'
import { type Browser, chromium } from 'playwright-core'
import type { Teardown } from './tmp.js'

/**
 * A headless Chromium for the console's browser tests: Debian's (`apt-get install chromium`;
 * .ci/run installs it), driven by playwright-core, which downloads no browser of its own.
 * CHROMIUM overrides the path. Without one the test fails saying so; it never skips.
 */
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'

export async function launchBrowser (t: Teardown): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: install Debian's (apt-get install --no-install-recommends chromium) or set CHROMIUM`)
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // no sandbox as root; nothing that reaches outside this machine (its network is closed);
    // playwright gives it a fresh profile of its own
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60_000
  })
  t.teardown(async () => { await browser.close() })
  return browser
}
