import t from 'tap'
import { collectGarbage } from '../src/base/gc.js'

// A replica collects its garbage after a bulk catch-up (Replicator.noteApplied): the call
// must work without --expose-gc on the command line, and must actually free memory.
//
// Measured on the V8 heap (heapUsed), not RSS (which the allocator returns to the OS when it
// likes), and against what this test itself allocated: the garbage is measured between two
// full collections, so the assertion holds whatever the objects' size on this V8 build.
t.test('collectGarbage runs a full collection without --expose-gc', async t => {
  t.notOk(process.execArgv.includes('--expose-gc'), 'not started with --expose-gc')
  t.ok(collectGarbage(), 'a collection ran')
  const baseline = process.memoryUsage().heapUsed
  let garbage: unknown[] | undefined = Array.from({ length: 300_000 }, (_, i) => ({ i, text: `garbage-${i}` }))
  const withGarbage = process.memoryUsage().heapUsed
  const allocated = withGarbage - baseline
  // 300,000 live objects and strings take megabytes whatever their layout
  t.ok(allocated > 2 ** 20, `the garbage takes ${Math.round(allocated / 2 ** 20)} MB of heap`)
  t.equal(garbage.length, 300_000)
  garbage = undefined
  t.ok(collectGarbage(), 'a collection ran')
  const freed = withGarbage - process.memoryUsage().heapUsed
  // All of it is unreachable; at least half must be gone (the rest is slack for whatever the
  // test runner allocated meanwhile, a few kilobytes).
  t.ok(freed > allocated / 2, `freed ${Math.round(freed / 2 ** 20)} of the ${Math.round(allocated / 2 ** 20)} MB`)
})
