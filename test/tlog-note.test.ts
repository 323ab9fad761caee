import t from 'tap'
import { randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { ROOT } from './helpers/node-process.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { MerkleTree } from '../src/ledger/tlog/merkle-tree.js'
import { formatCheckpoint, parseCheckpoint } from '../src/ledger/tlog/checkpoint.js'
import { SIG_COSIGNATURE_V1, SIG_ED25519, formatNote, formatVkey, keyId, parseNote, parseVkey, signNote, verifyNote } from '../src/ledger/tlog/note.js'

t.test('the C2SP signed-note example verifies with its verifier key', async t => {
  // both from c2sp.org/signed-note, "Example"
  const vkey = parseVkey('example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k')
  t.match(vkey, { name: 'example.com/foo', type: SIG_ED25519 })
  t.equal(formatVkey(vkey), 'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k')
  const note = parseNote('This is an example message.\n\n\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n')
  t.equal(note.text, 'This is an example message.\n')
  t.equal(verifyNote(note, [vkey]).length, 1)
  t.throws(() => verifyNote({ ...note, text: 'This is another message.\n' }, [vkey]), /signature of example.com\/foo .* does not verify/)
})

t.test('checkpoints signed by a log key and cosigned with a timestamp; unknown keys ignored, bad ones refused', async t => {
  const log = new Ed25519Signer(randomBytes(32))
  const witness = new Ed25519Signer(randomBytes(32))
  const tree = new MerkleTree()
  for (let i = 0; i < 10; i++) tree.append(Buffer.from(`policy ${i}`))
  const text = formatCheckpoint({ origin: 'ledgermesh.example/net1', size: tree.size, root: tree.root(), extensions: [] })
  t.equal(text, `ledgermesh.example/net1\n10\n${tree.root().toString('base64')}\n`)
  t.same(parseCheckpoint(text), { origin: 'ledgermesh.example/net1', size: 10, root: tree.root(), extensions: [] })

  const signed = formatNote({ text, signatures: [signNote(text, 'ledgermesh.example/net1', log, SIG_ED25519), signNote(text, 'witness.example/w1', witness, SIG_COSIGNATURE_V1, 1_700_000_000)] })
  const logKey = { name: 'ledgermesh.example/net1', type: SIG_ED25519, publicKey: log.publicKey } as const
  const witnessKey = { name: 'witness.example/w1', type: SIG_COSIGNATURE_V1, publicKey: witness.publicKey } as const
  const note = parseNote(signed)
  t.same(verifyNote(note, [logKey]).map(v => v.verifier.name), ['ledgermesh.example/net1'], 'the witness signature is ignored by a verifier that does not know it')
  t.same(verifyNote(note, [logKey, witnessKey]).map(v => v.timestamp), [undefined, 1_700_000_000], 'the cosignature carries its time')
  t.throws(() => verifyNote(note, [{ ...logKey, publicKey: witness.publicKey }]), /signed by none of the keys/, 'the same name with another key: ignored, so none verifies')
  const forged = signed.replace(text, text.replace('\n10\n', '\n11\n'))
  t.throws(() => verifyNote(parseNote(forged), [logKey]), /does not verify/, 'a changed tree size')
  t.not(keyId('a/b', SIG_ED25519, log.publicKey), keyId('a/b', SIG_COSIGNATURE_V1, log.publicKey), 'the type is part of the key ID')
})

t.test('malformed notes, checkpoints and verifier keys are refused, naming the problem', async t => {
  t.throws(() => parseNote('text\n'), /no blank line/)
  t.throws(() => parseNote('text\n\n\u2014 name sig\n'), /not base64 of a key ID/)
  t.throws(() => parseNote('te\u0007xt\n\n\u2014 a AAAAAAA=\n'), /control character/)
  t.throws(() => parseNote('text\n\n- name AAAAAAAA\n'), /is not '— <name> <base64>'/)
  t.throws(() => parseCheckpoint('origin\n010\nAAAA\n'), /not a decimal number without leading zeros/)
  t.throws(() => parseCheckpoint('origin\n10\n'), /expected origin, tree size and root hash/)
  t.throws(() => parseCheckpoint('origin\n10\nAAAA\n'), /not the base64 of a 32-byte hash/)
  t.throws(() => parseCheckpoint(`\n10\n${Buffer.alloc(32).toString('base64')}\n`), /origin line is empty/)
  t.throws(() => parseVkey('example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k'), /key ID does not match/)
  // a key whose base64 holds '+' (the separator): split at the first two only
  for (let i = 0; i < 200; i++) {
    const v = { name: 'a.example/k', type: SIG_COSIGNATURE_V1, publicKey: new Ed25519Signer(randomBytes(32)).publicKey } as const
    t.same(parseVkey(formatVkey(v)), v)
  }
})

t.test('an independent implementation (Python and openssl) checks our trees, proofs and signed checkpoints', async t => {
  const script = join(ROOT, 'test', 'fixtures', 'tlog_check.py')
  const log = new Ed25519Signer(randomBytes(32))
  const entries = Array.from({ length: 300 }, (_, i) => randomBytes(1 + (i % 50)))
  const tree = new MerkleTree()
  for (const e of entries) tree.append(e)
  const text = formatCheckpoint({ origin: 'ledgermesh/test', size: 300, root: tree.root(), extensions: [] })
  const note = formatNote({ text, signatures: [signNote(text, 'ledgermesh/test', log, SIG_ED25519), signNote(text, 'ledgermesh/test-timed', log, SIG_COSIGNATURE_V1)] })
  const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64')
  const inclusion = [[0, 1], [0, 300], [17, 18], [150, 300], [255, 256], [299, 300], [100, 257]].map(([index, size]) => ({ index, size, proof: tree.inclusionProof(index, size).map(b64) }))
  const consistency = [[1, 300], [2, 3], [128, 300], [200, 256], [255, 257], [299, 300]].map(([first, second]) => ({ first, second, proof: tree.consistencyProof(first, second).map(b64) }))
  const tampered = {
    inclusion: [{ ...inclusion[3], index: 151 }, { ...inclusion[3], proof: [...inclusion[3].proof.slice(1), inclusion[3].proof[0]] }],
    consistency: [{ ...consistency[2], first: 129 }]
  }
  const run = spawnSync('python3', [script], {
    input: JSON.stringify({
      entries: entries.map(b64),
      note,
      vkeys: [formatVkey({ name: 'ledgermesh/test', type: SIG_ED25519, publicKey: log.publicKey }), formatVkey({ name: 'ledgermesh/test-timed', type: SIG_COSIGNATURE_V1, publicKey: log.publicKey })],
      roots: [0, 1, 2, 3, 255, 256, 300],
      inclusion: [...inclusion, ...tampered.inclusion],
      consistency: [...consistency, ...tampered.consistency]
    }),
    encoding: 'utf8',
    timeout: 60_000
  })
  t.equal(run.status, 0, run.stderr)
  const verdict = JSON.parse(run.stdout)
  t.same(verdict.note, { verified: ['ledgermesh/test', 'ledgermesh/test-timed'], origin: 'ledgermesh/test', size: 300, root_matches_entries: true }, 'the checkpoint: both signatures verify and its root is the entries\' MTH')
  t.same(verdict.roots, [0, 1, 2, 3, 255, 256, 300].map(n => tree.root(n).toString('base64')), 'the same roots')
  t.same(verdict.inclusion, [...inclusion.map(() => true), false, false], 'our inclusion proofs verify there; tampered ones do not')
  t.same(verdict.consistency, [...consistency.map(() => true), false], 'our consistency proofs verify there; a tampered one does not')
})
