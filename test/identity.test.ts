import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadOrCreateIdentity, libp2pPrivateKey, peerIdFromSigner } from '../src/node/identity.js'

const home = mkdtempSync(join(tmpdir(), 'lm-identity-'))
t.teardown(() => rmSync(home, { recursive: true, force: true }))

t.test('created once, then loaded; the same key is the libp2p peer id', async t => {
  const first = await loadOrCreateIdentity(home)
  t.equal(first.created, true)
  t.equal(statSync(first.path).mode & 0o777, 0o600, 'the key file is private')
  const second = await loadOrCreateIdentity(home)
  t.equal(second.created, false)
  t.equal(second.signer.publicKey, first.signer.publicKey)
  const key = libp2pPrivateKey(second.signer)
  const message = Buffer.from('ledgermesh')
  t.equal(Buffer.from(await key.sign(message)).toString('hex'), second.signer.sign(message), 'byte-identical signatures')
  t.match(peerIdFromSigner(second.signer), /^12D3Koo/)
})

t.test('a corrupt identity file is a clear error', async t => {
  const other = mkdtempSync(join(tmpdir(), 'lm-identity-'))
  t.teardown(() => rmSync(other, { recursive: true, force: true }))
  await loadOrCreateIdentity(other)
  writeFileSync(join(other, 'identity', 'node.key'), 'garbage')
  await t.rejects(loadOrCreateIdentity(other), { code: 'bad_config', message: /identity file .*node\.key is corrupt: expected 64 hex characters/ })
})
