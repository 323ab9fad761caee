import fc from 'fast-check'
import t from 'tap'
import { Backoff } from '../src/net/backoff.js'

// Reconnects and outbox retries back off with jitter, so that nodes cut off together (the WAN
// harness's partitions) do not all come back in the same instant.

t.test('each wait lies in the upper half of a step that doubles up to the cap', async t => {
  fc.assert(fc.property(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 64 }), fc.array(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), { minLength: 1, maxLength: 30 }), (min, factor, draws) => {
    const max = min * factor
    let i = 0
    const backoff = new Backoff(min, max, () => draws[i++ % draws.length])
    let step = min
    for (let n = 0; n < draws.length; n++) {
      const wait = backoff.next()
      if (wait < Math.round(step / 2) || wait > Math.round(step)) return false
      step = Math.min(step * 2, max)
    }
    return true
  }))
})

t.test('the extremes of the draw, and reset', async t => {
  const low = new Backoff(200, 5000, () => 0)
  t.same([low.next(), low.next(), low.next(), low.next(), low.next(), low.next()], [100, 200, 400, 800, 1600, 2500], 'half of each step, up to half the cap')
  const high = new Backoff(200, 5000, () => 0.999999)
  t.same(Array.from({ length: 7 }, () => high.next()), [200, 400, 800, 1600, 3200, 5000, 5000], 'the whole step')
  high.reset()
  t.ok(high.atStart)
  t.equal(high.next(), 200, 'after a reset, the shortest step again')
})

t.test('two nodes backing off from the same moment draw different waits', async t => {
  const draws = (seed: number): () => number => { let x = seed; return () => { x = (x * 16807) % 2147483647; return x / 2147483647 } }
  const a = new Backoff(200, 5000, draws(1))
  const b = new Backoff(200, 5000, draws(2))
  const waitsA = Array.from({ length: 5 }, () => a.next())
  const waitsB = Array.from({ length: 5 }, () => b.next())
  t.not(waitsA.join(','), waitsB.join(','), `${waitsA.join(',')} vs ${waitsB.join(',')}`)
})
