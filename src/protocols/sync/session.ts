import type { Stream } from '@libp2p/interface'
import type { LengthPrefixedStream } from '@libp2p/utils'
import type { SyncContext, SyncTarget } from './context.js'

/** A stream a pull sends one request on, with its frame reader (which may hold bytes read ahead). */
export interface Session {
  stream: Stream
  lp: LengthPrefixedStream
  /** kept open from an earlier request (the source may have closed it meanwhile: worth one retry) */
  reused: boolean
  /** gives the outbound slot back */
  release: () => void
}

interface Parked { stream: Stream, lp: LengthPrefixedStream, forget: () => void }

const usable = (stream: Stream): boolean =>
  stream.status === 'open' && stream.writeStatus === 'writable' && stream.remoteWriteStatus === 'writable' && stream.readStatus === 'readable'

/**
 * The client's session streams: a pull's request that the source answered with `open` leaves
 * its stream here, and the next request to the same source goes on it instead of a new
 * stream (each new stream costs a multistream-select negotiation and yamux open and close
 * frames, several times the bytes of a round that finds nothing new). At most one idle
 * stream per source; one the source closes (its idle timeout) is closed here too.
 */
export class Sessions {
  private readonly idle = new Map<string, Parked>()

  constructor (private readonly ctx: SyncContext) {}

  /** A stream to `target` within an outbound slot: the idle session stream, or a new one. */
  async take (target: SyncTarget, signal: AbortSignal): Promise<Session> {
    const key = target.toString()
    const parked = this.idle.get(key)
    if (parked !== undefined) {
      this.idle.delete(key)
      parked.forget()
      if (usable(parked.stream)) {
        const release = await this.ctx.reserve(signal)
        if (usable(parked.stream)) return { stream: parked.stream, lp: parked.lp, reused: true, release }
        release()
      }
      closeQuietly(parked.stream)
    }
    const { stream, release } = await this.ctx.open(target, signal)
    return { stream, lp: this.ctx.frames(stream), reused: false, release }
  }

  /** Keeps the session's stream for the next request to `target` (another already kept is left as it is, and this one closed). */
  park (target: SyncTarget, session: Session): void {
    const key = target.toString()
    const { stream, lp } = session
    if (!usable(stream) || this.idle.has(key)) {
      closeQuietly(stream)
      return
    }
    const drop = (): void => {
      if (this.idle.get(key)?.stream === stream) this.idle.delete(key)
      forget()
      closeQuietly(stream)
    }
    const forget = (): void => {
      stream.removeEventListener('remoteCloseWrite', drop)
      stream.removeEventListener('close', drop)
    }
    stream.addEventListener('remoteCloseWrite', drop)
    stream.addEventListener('close', drop)
    this.idle.set(key, { stream, lp, forget })
  }

  /** Closes every idle session stream (stop()). */
  closeAll (): void {
    for (const { stream, forget } of this.idle.values()) {
      forget()
      closeQuietly(stream)
    }
    this.idle.clear()
  }
}

/** Closes our end (the source then closes its own); a stream that cannot close cleanly is aborted. */
function closeQuietly (stream: Stream): void {
  if (stream.status !== 'open') return
  stream.close({ signal: AbortSignal.timeout(1000) }).catch((err: unknown) => {
    stream.abort(err instanceof Error ? err : new Error('sync session close failed'))
  })
}
