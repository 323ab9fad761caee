import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ledger } from '../../src/ledger/ledger.js'
import { LevelStore } from '../../src/ledger/level-store.js'
import { libp2pPrivateKey } from '../../src/node/identity.js'
import { silentLogger } from '../../src/node/logger.js'
import { Ed25519Signer } from '../../src/policies/keys.js'
import { preparePolicy } from '../../src/policies/prepare.js'
import { P2PHost } from '../../src/services/p2p.js'

interface Teardown { teardown: (fn: () => void | Promise<void>) => void }

/** A libp2p host on 127.0.0.1 (random port) with a ledger on LevelDB, stopped at teardown. */
export async function ledgerPeer (t: Teardown, opts: { master?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'lm-peer-'))
  const signer = new Ed25519Signer(randomBytes(32))
  const host = new P2PHost({ privateKey: libp2pPrivateKey(signer), ip: '127.0.0.1', port: 0, log: silentLogger() })
  await host.start()
  const ledger = new Ledger({ store: new LevelStore({ path: join(dir, 'ledger') }), log: silentLogger(), masterSigner: opts.master === true ? signer : undefined })
  await ledger.open()
  t.teardown(async () => {
    await host.stop()
    await ledger.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return { host, ledger, signer, address: host.libp2p.getMultiaddrs()[0] }
}

const author = new Ed25519Signer(randomBytes(32))

/** Inserts `count` small signed policies through the master's group commit. */
export async function insertProbes (ledger: Ledger, count: number, prefix = 'probe'): Promise<void> {
  await Promise.all(Array.from({ length: count }, async (_, i) => {
    await ledger.submit({ op: 'put', policy: preparePolicy({ probe: { name: `${prefix}-${i}` } }, author) })
  }))
}
