import t from 'tap'
import { randomBytes } from 'node:crypto'
import { Ed25519Signer, authorizeOp, preparePolicy, prepareTombstone, policyBody, type AuthContext, type Policy } from '../src/policies/index.js'

const master = new Ed25519Signer(randomBytes(32))
const admin = new Ed25519Signer(randomBytes(32))
const nodeA = new Ed25519Signer(randomBytes(32))
const nodeB = new Ed25519Signer(randomBytes(32))

const declaredA = preparePolicy({ worker: { name: 'w1' } }, nodeA)
const live = new Map<string, Policy>([[String(policyBody(declaredA).id), declaredA]])

const ctx: AuthContext = {
  masterKey: master.publicKey,
  isAdmin: key => key === admin.publicKey,
  getPolicy: id => live.get(id),
  findByName: (type, name) => [...live.values()].find(p => Object.keys(p)[0] === type && policyBody(p).name === name),
  // this suite is about the rules of an open network; admission has its own (admission-rules)
  admissionRequired: () => false,
  isAdmitted: () => false,
  isRevoked: () => false
}
const put = (policy: Policy, signer: Ed25519Signer) => ({ op: 'put' as const, policy: preparePolicy(policy, signer) })

t.test('assignment, admin and admission policies: master and admins only', async t => {
  for (const type of ['assignment', 'admin']) {
    const body = type === 'admin' ? { name: 'a', key: nodeB.publicKey } : { profile: 'p', worker: 'w1' }
    t.throws(() => authorizeOp(put({ [type]: body }, nodeA), ctx), { code: 'unauthorized', message: new RegExp(`may not write ${type} policies`) })
    t.doesNotThrow(() => authorizeOp(put({ [type]: body }, master), ctx))
    t.doesNotThrow(() => authorizeOp(put({ [type]: body }, admin), ctx))
  }
  t.throws(() => authorizeOp(put({ admin: { name: 'a', key: nodeB.publicKey } }, nodeA), { ...ctx, masterKey: undefined }), { code: 'unauthorized' }, 'no admin before a master exists')
})

t.test('a master declaration: the bootstrap one, then only the master or an admin', async t => {
  t.doesNotThrow(() => authorizeOp(put({ master: { name: 'm' } }, nodeA), { ...ctx, masterKey: undefined }))
  t.throws(() => authorizeOp(put({ master: { name: 'm2' } }, nodeA), ctx), { code: 'unauthorized', message: /may not declare a master/ })
  t.doesNotThrow(() => authorizeOp(put({ master: { name: 'm' } }, master), ctx))
})

t.test('a node may replace only its own declaration', async t => {
  t.throws(() => authorizeOp(put({ worker: { name: 'w1', port: 9 } }, nodeB), ctx), { code: 'unauthorized', message: /worker 'w1' is declared by key .* may not replace it/ })
  t.doesNotThrow(() => authorizeOp(put({ worker: { name: 'w1', port: 9 } }, nodeA), ctx), 'its author may')
  t.doesNotThrow(() => authorizeOp(put({ worker: { name: 'w1', port: 9 } }, master), ctx), 'the master may')
  t.doesNotThrow(() => authorizeOp(put({ worker: { name: 'w2' } }, nodeB), ctx), 'a new name is free')
  t.doesNotThrow(() => authorizeOp(put({ sensor: { name: 'w1' } }, nodeB), ctx), 'other types are open')
})

t.test('deletes: the author, the master or an admin', async t => {
  const id = String(policyBody(declaredA).id)
  t.throws(() => authorizeOp({ op: 'delete', policy: prepareTombstone(id, nodeB) }, ctx), { code: 'unauthorized', message: /may not delete worker policy/ })
  t.doesNotThrow(() => authorizeOp({ op: 'delete', policy: prepareTombstone(id, nodeA) }, ctx))
  t.doesNotThrow(() => authorizeOp({ op: 'delete', policy: prepareTombstone(id, admin) }, ctx))
  t.throws(() => authorizeOp({ op: 'delete', policy: prepareTombstone('f'.repeat(64), master) }, ctx), { code: 'not_found' })
})

t.test('a network that requires admission: only the master, admins and admitted keys write', async t => {
  const admitted = new Set([nodeA.publicKey])
  const closed: AuthContext = { ...ctx, admissionRequired: () => true, isAdmitted: key => admitted.has(key) }
  t.doesNotThrow(() => authorizeOp(put({ note: { name: 'n' } }, nodeA), closed), 'an admitted key')
  t.throws(() => authorizeOp(put({ note: { name: 'n' } }, nodeB), closed), { code: 'unauthorized', message: /not admitted to this network/, details: { reason: 'not_admitted' } })
  t.doesNotThrow(() => authorizeOp(put({ note: { name: 'n' } }, master), closed), 'the master')
  t.doesNotThrow(() => authorizeOp(put({ note: { name: 'n' } }, admin), closed), 'an admin')
  for (const [type, body] of [['admission', { key: nodeB.publicKey, via: 'admin' }], ['revocation', { key: nodeB.publicKey }], ['network', { admission: 'open' }]] as const) {
    t.throws(() => authorizeOp(put({ [type]: body }, nodeA), closed), { code: 'unauthorized', message: new RegExp(`may not write ${type} policies`) }, `${type}: not by an admitted node`)
    t.doesNotThrow(() => authorizeOp(put({ [type]: body }, master), closed), `${type}: by the master`)
  }
})

t.test('a revocation binds every key: a revoked admin, master or node writes nothing, even in an open network', async t => {
  const otherMaster = new Ed25519Signer(randomBytes(32))
  const revoked = new Set([admin.publicKey, nodeA.publicKey, otherMaster.publicKey])
  const withRevocations: AuthContext = { ...ctx, isMasterKey: key => key === master.publicKey || key === otherMaster.publicKey, isRevoked: key => revoked.has(key) }
  for (const [who, signer] of [['an admin', admin], ['a node', nodeA], ['another master', otherMaster]] as const) {
    t.throws(() => authorizeOp(put({ note: { name: 'n' } }, signer), withRevocations), { code: 'unauthorized', message: /was revoked/, details: { reason: 'revoked' } }, `${who}: its writes`)
    t.throws(() => authorizeOp(put({ admin: { name: 'x', key: nodeB.publicKey } }, signer), withRevocations), { code: 'unauthorized', message: /was revoked/ }, `${who}: its privileged writes`)
  }
  const id = String(policyBody(declaredA).id)
  t.throws(() => authorizeOp({ op: 'delete', policy: prepareTombstone(id, nodeA) }, withRevocations), { code: 'unauthorized', message: /was revoked/ }, 'a revoked node may not delete even its own policy')
  t.doesNotThrow(() => authorizeOp(put({ note: { name: 'n' } }, master), withRevocations), 'an unrevoked master still writes')
})

t.test('revocations: lifted by a master only; a master\'s key revoked by another master only', async t => {
  const otherMaster = new Ed25519Signer(randomBytes(32))
  const revocation = preparePolicy({ revocation: { key: nodeB.publicKey } }, master)
  const withRevocation: AuthContext = {
    ...ctx,
    isMasterKey: key => key === master.publicKey || key === otherMaster.publicKey,
    getPolicy: found => found === policyBody(revocation).id ? revocation : live.get(found)
  }
  const lift = (signer: Ed25519Signer) => ({ op: 'delete' as const, policy: prepareTombstone(String(policyBody(revocation).id), signer) })
  t.throws(() => authorizeOp(lift(admin), withRevocation), { code: 'unauthorized', message: /only a master lifts a revocation/ }, 'not by an admin (the admin could lift its own)')
  t.doesNotThrow(() => authorizeOp(lift(master), withRevocation), 'by a master (admit node)')
  t.throws(() => authorizeOp(put({ revocation: { key: master.publicKey } }, admin), withRevocation), { code: 'unauthorized', message: /may not revoke master key .*only another trusted master may/ }, 'an admin may not revoke a master')
  t.throws(() => authorizeOp(put({ revocation: { key: master.publicKey } }, master), withRevocation), { code: 'unauthorized', message: /may not revoke its own key/ }, 'nor a master itself')
  t.doesNotThrow(() => authorizeOp(put({ revocation: { key: master.publicKey } }, otherMaster), withRevocation), 'another master may')
  t.doesNotThrow(() => authorizeOp(put({ revocation: { key: nodeB.publicKey } }, admin), withRevocation), 'an admin still revokes a node')
})

t.test('master_key policies: a trusted master key only, not an admin (it would be handed every profile\'s settings)', async t => {
  const body = { name: 'm2', key: nodeB.publicKey }
  t.throws(() => authorizeOp(put({ master_key: body }, admin), ctx), { code: 'unauthorized', message: /may not write master_key policies: only a trusted master key may/ })
  t.throws(() => authorizeOp(put({ master_key: body }, nodeA), ctx), { code: 'unauthorized', message: /may not write master_key policies/ })
  t.doesNotThrow(() => authorizeOp(put({ master_key: body }, master), ctx))
})
