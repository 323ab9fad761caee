import t from 'tap'
import { secretEquals } from '../src/base/secrets.js'

// The REST token is compared in constant time: both sides hashed, then timingSafeEqual, so
// neither where two values first differ nor their lengths change how long the check takes.
t.test('secretEquals: equal only for the same value, whatever the lengths', async t => {
  t.ok(secretEquals('Bearer s3cret', 'Bearer s3cret'))
  t.notOk(secretEquals('Bearer s3cres', 'Bearer s3cret'), 'one character off at the end')
  t.notOk(secretEquals('Bearer s3cret-and-more', 'Bearer s3cret'), 'longer')
  t.notOk(secretEquals('Bearer', 'Bearer s3cret'), 'a prefix')
  t.notOk(secretEquals('', 'Bearer s3cret'), 'empty')
  t.notOk(secretEquals(undefined, 'Bearer s3cret'), 'no header at all')
  t.ok(secretEquals('Bearer ünïcode', 'Bearer ünïcode'), 'any UTF-8 text')
})
