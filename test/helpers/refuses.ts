import type t from 'tap'
import { LedgerMeshError } from '../../src/base/errors.js'

/**
 * Asserts that `fn` throws a bad_policy LedgerMeshError with `reason`, a message matching
 * `message`, and never the `secret` plaintext in it.
 */
export function refuses (tt: typeof t, fn: () => unknown, opts: { reason: string, message: RegExp, secret: string }, what: string): void {
  try {
    fn()
    tt.fail(`${what}: expected a refusal`)
  } catch (err) {
    tt.ok(err instanceof LedgerMeshError, `${what}: a LedgerMeshError`, { err })
    const e = err as LedgerMeshError
    tt.equal(e.code, 'bad_policy', `${what}: code bad_policy`)
    tt.equal(e.details.reason, opts.reason, `${what}: reason ${opts.reason}`)
    tt.match(e.message, opts.message, `${what}: the message says why`)
    tt.notMatch(e.message, opts.secret, `${what}: the message does not show the plaintext`)
  }
}
