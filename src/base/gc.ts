import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

let collect: (() => void) | undefined | null = null

/**
 * Runs a full V8 garbage collection now; false when the runtime does not allow it.
 *
 * Used after bulk work that leaves far more garbage than live data (a replica catching up on
 * 100,000 policies): V8 would otherwise keep the process at its peak size until it next
 * needed the room, which on a machine with plenty of memory can be never.
 */
export function collectGarbage (): boolean {
  if (collect === null) {
    try {
      // `gc` is only exposed with --expose-gc; setting the flag now exposes it in new contexts.
      setFlagsFromString('--expose-gc')
      collect = runInNewContext('gc') as () => void
    } catch {
      collect = undefined
    }
  }
  collect?.()
  return collect !== undefined
}
