import { Semaphore } from 'async-mutex'

/**
 * A counting semaphore for outbound streams: callers over `max` wait (bounded by their
 * signal) instead of being reset by libp2p's per-protocol stream limit.
 */
export class StreamSlots {
  private readonly semaphore: Semaphore

  constructor (readonly max: number) {
    this.semaphore = new Semaphore(max)
  }

  /** Resolves with the slot's release (idempotent); rejects with the signal's reason if it aborts first. */
  async acquire (signal: AbortSignal): Promise<() => void> {
    if (!this.semaphore.isLocked()) {
      const [, release] = await this.semaphore.acquire()
      return release
    }
    signal.throwIfAborted()
    const acquiring = this.semaphore.acquire()
    let onAbort: (() => void) | undefined
    try {
      const [, release] = await Promise.race([
        acquiring,
        new Promise<never>((_resolve, reject) => {
          onAbort = () => { reject(signal.reason) }
          signal.addEventListener('abort', onAbort, { once: true })
        })
      ])
      return release
    } catch (err) {
      // the waiter keeps its place in the queue: the slot it gets is handed straight on
      void acquiring.then(([, release]) => { release() })
      throw err
    } finally {
      if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
    }
  }
}
