import { setMaxListeners } from 'node:events'

const keepAlive = (): void => {}

/**
 * A signal that aborts after `ms`, or when any of `signals` does. Node 20's AbortSignal.any
 * holds its sources weakly, and an AbortSignal.timeout that nothing listens to directly can
 * be garbage-collected before it fires — the composite then never aborts (a stalled peer
 * would hang a stream forever). The listener keeps the timeout alive until it fires.
 */
export function deadlineSignal (ms: number, ...signals: Array<AbortSignal | undefined>): AbortSignal {
  const timeout = AbortSignal.timeout(ms)
  timeout.addEventListener('abort', keepAlive, { once: true })
  const signal = AbortSignal.any([timeout, ...signals.filter((s): s is AbortSignal => s !== undefined)])
  setMaxListeners(Infinity, signal)
  return signal
}

/** A fresh controller whose signal any number of deadlines may listen to. */
export function shutdownController (): AbortController {
  const controller = new AbortController()
  setMaxListeners(Infinity, controller.signal)
  return controller
}
