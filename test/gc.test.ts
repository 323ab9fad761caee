import t from 'tap'
import { collectGarbage } from '../src/node/gc.js'

// A replica collects its garbage after a bulk catch-up (Replicator.noteApplied): the call
// must work without --expose-gc on the command line, and must actually free memory.
t.test('collectGarbage runs a full collection without --expose-gc', async t => {
  t.notOk(process.execArgv.includes('--expose-gc'), 'not started with --expose-gc')
  let garbage: unknown[] | undefined = Array.from({ length: 300_000 }, (_, i) => ({ i, text: `garbage-${i}` }))
  const withGarbage = process.memoryUsage().heapUsed
  t.ok(garbage.length > 0)
  garbage = undefined
  t.ok(collectGarbage(), 'a collection ran')
  const after = process.memoryUsage().heapUsed
  t.ok(withGarbage - after > 10 * 2 ** 20, `freed ${Math.round((withGarbage - after) / 2 ** 20)} MB`)
})
