import type { Stream } from '@libp2p/interface'
import { LedgerMeshError, errorMessage, toError } from '../../base/errors.js'
import { deadlineSignal, shutdownController } from '../../net/deadline.js'
import { clientError, readResponse, reject, writeRequest } from './client.js'
import { WATCH_MISSED_KEEPALIVES, WIRE_VERSION } from './constants.js'
import type { SyncResponse } from './codec.js'
import type { PullOptions, PullResult, SyncContext, SyncTarget, WatchHandle, WatchHandlers } from './context.js'
import { type RunApplier, RunAssembler, link } from './run.js'

/**
 * Keeps the replica current from `target`: a pull first (catch-up, recovery), then a stream
 * on which the source pushes every append. Each run is applied once its signed head arrives.
 * The watch ends on close(), stop(), a rejected run, or a source silent for three keepalives.
 * `watches` holds the handle while the watch runs.
 */
export function watch (
  ctx: SyncContext, applier: RunApplier, pull: (target: SyncTarget, opts: PullOptions) => Promise<PullResult>,
  watches: Set<WatchHandle>, target: SyncTarget, handlers: WatchHandlers
): WatchHandle {
  const controller = shutdownController()
  let stream: Stream | undefined
  const handle: WatchHandle = {
    close: () => {
      controller.abort(new LedgerMeshError('timeout', 'watch closed'))
      stream?.abort(new Error('watch closed'))
    }
  }
  watches.add(handle)
  const run = async (): Promise<void> => {
    const { ledger } = ctx.components
    const pulled = await pull(target, { signal: controller.signal })
    if (pulled.applied > 0 && ledger.signedHead !== undefined) handlers.onApplied(pulled.applied, ledger.signedHead)
    const openSignal = ctx.deadline(controller.signal)
    const opened = await ctx.open(target, openSignal)
    stream = opened.stream
    try {
      if (controller.signal.aborted) return
      const lp = ctx.frames(stream)
      const start = ledger.head
      const held = ledger.signedHead
      const holdsHead = start.seq > 0 && held?.seq === start.seq && held.hash === start.hash
      await writeRequest(ctx, lp, { version: WIRE_VERSION, afterSeq: start.seq, afterHash: start.hash, limit: ctx.maxEntries, watch: true, holdsHead }, openSignal)
      const pushed = new RunAssembler(ctx, applier, start)
      let sinceHead = 0
      const silence = ctx.keepaliveMs * WATCH_MISSED_KEEPALIVES
      while (!controller.signal.aborted) {
        const signal = deadlineSignal(silence, controller.signal, ctx.shutdown())
        let response: SyncResponse
        try {
          response = await readResponse(ctx, lp, signal)
        } catch (err) {
          throw clientError(ctx, err, target, signal, controller.signal, `no frame from the sync source in ${silence} ms`)
        }
        if (response.currentSeq !== undefined) {
          // a short keepalive: the source's head is the one this replica holds (it asked with holds_head)
          if (!holdsHead || pushed.size > 0 || response.currentSeq !== pushed.tip.seq) {
            throw reject(ctx, new LedgerMeshError('bad_message', `sync source says current at seq ${response.currentSeq}, where this replica holds seq ${pushed.tip.seq}${pushed.size > 0 ? ' unsigned' : ''}`))
          }
          continue
        }
        pushed.take(response.entries, link(ctx, pushed.tip, response.entries))
        sinceHead += response.entries.length
        if (sinceHead > ctx.maxEntries) {
          throw reject(ctx, new LedgerMeshError('bad_message', `sync source pushed more than ${ctx.maxEntries} entries without a signed head`))
        }
        if (response.head === undefined) continue
        sinceHead = 0
        if (pushed.size === 0) continue // a keepalive
        const head = pushed.endsAt(response.head, response.more)
        if (head === undefined) continue
        const applied = await pushed.apply(head)
        if (applied > 0) handlers.onApplied(applied, head)
      }
    } finally {
      opened.release()
      stream.abort(new Error('watch ended'))
    }
  }
  run().then(
    () => { handlers.onClose() },
    (err: unknown) => { handlers.onClose(controller.signal.aborted || ctx.shutdown().aborted ? undefined : toError(err)) }
  ).catch((err: unknown) => {
    ctx.components.log.error({ err: errorMessage(err) }, 'a sync watch handler threw')
  }).finally(() => { watches.delete(handle) })
  return handle
}
