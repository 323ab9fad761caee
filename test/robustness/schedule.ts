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

/** A revocation issued while the faults run: `revoke node` of the member's key on the active master. */
export interface Revocation { atMs: number, target: string }

/** Whether the seed revokes the member during the run, and when (the member is then left out of the faults). */
export function revocationFor (seed: number, runMs: number, member: string): Revocation | undefined {
  const [drawn] = fc.sample(fc.record({ revoke: fc.boolean(), at: fc.double({ min: 0.3, max: 0.7, noNaN: true }) }), { seed: seed ^ 0x5eed, numRuns: 1 })
  return drawn.revoke ? { atMs: Math.round(drawn.at * runMs), target: member } : undefined
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
