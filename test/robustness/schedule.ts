import fc from 'fast-check'

/** One fault of a run, `atMs` after the clients started. */
export interface Fault {
  atMs: number
  kind: 'kill' | 'pause'
  /** the node's name */
  target: string
  /** how long a paused node sleeps, or a killed one stays down */
  forMs: number
}

/**
 * A run's faults, generated from its seed (fast-check's generator, so one seed always gives
 * the same schedule, which is printed and can be replayed with --seed): kill -9 and
 * SIGSTOP/SIGCONT of any node, the writing master included, spread over the run, each
 * healed before the next begins so every run ends with the whole network up.
 */
export function scheduleFor (seed: number, runMs: number, targets: string[]): Fault[] {
  const count = Math.max(1, Math.floor(runMs / 15_000))
  const slot = runMs / count
  const fault = fc.record({
    kind: fc.constantFrom<Fault['kind']>('kill', 'pause'),
    target: fc.constantFrom(...targets),
    // within its slot: starts in the first half, lasts 1 to 6 s (at most half the slot)
    startFraction: fc.double({ min: 0, max: 0.5, noNaN: true }),
    forMs: fc.integer({ min: 1000, max: Math.max(1000, Math.min(6000, Math.floor(slot / 2))) })
  })
  const [drawn] = fc.sample(fc.array(fault, { minLength: count, maxLength: count }), { seed, numRuns: 1 })
  return drawn.map((f, i) => ({ atMs: Math.round(i * slot + f.startFraction * slot), kind: f.kind, target: f.target, forMs: f.forMs }))
}
