import type { LengthPrefixedStream } from '@libp2p/utils'
import { type ErrorCode, LedgerMeshError, errorMessage, toError } from '../../base/errors.js'
import type { SignedHead } from '../../ledger/head.js'
import { SYNC_ERROR } from './constants.js'
import { type SyncError, type SyncRequest, type SyncResponse, decodeResponse, encodeRequest, varintSize } from './codec.js'
import type { SyncContext, SyncTarget } from './context.js'

/** What a pull has cost so far. */
export interface Progress { bytesReceived: number, requests: number }

/** Error codes of the libp2p length-prefix reader for frames that break the framing. */
const FRAMING_ERRORS = new Set(['InvalidDataLengthError', 'InvalidDataLengthLengthError', 'InvalidMessageLengthError', 'UnexpectedEOFError'])

export const isDiverged = (err: unknown): boolean => err instanceof LedgerMeshError && err.details.syncError === SYNC_ERROR.diverged

/** What an error frame from a source becomes on the client. */
function remoteError (error: SyncError, head: SignedHead | undefined): LedgerMeshError {
  const code: ErrorCode = error.code === SYNC_ERROR.diverged
    ? 'conflict'
    : error.code === SYNC_ERROR.timeout
      ? 'timeout'
      : error.code === SYNC_ERROR.internal
        ? 'internal'
        : error.code === SYNC_ERROR.unauthorized ? 'unauthorized' : error.code === SYNC_ERROR.compacted ? 'compacted' : 'bad_message'
  return new LedgerMeshError(code, `sync source says ${error.code}: ${error.message}`, { syncError: error.code, sourceHead: head?.seq })
}

/** Counts and logs a refused response; returns the error to throw. */
export function reject (ctx: SyncContext, err: unknown): Error {
  ctx.stats.rejected++
  const code = err instanceof LedgerMeshError ? err.code : 'internal'
  ctx.components.log.warn({ code, err: errorMessage(err) }, 'sync response rejected; the replica stays at its last valid head')
  return toError(err)
}

export async function writeRequest (ctx: SyncContext, lp: LengthPrefixedStream, request: SyncRequest, signal: AbortSignal): Promise<void> {
  const frame = encodeRequest(request)
  ctx.stats.bytesOut += frame.byteLength + varintSize(frame.byteLength)
  await lp.write(frame, { signal })
}

/** The next frame from a source; an error frame throws (`details.syncError` names it). */
export async function readResponse (ctx: SyncContext, lp: LengthPrefixedStream, signal: AbortSignal, progress?: Progress): Promise<SyncResponse> {
  const frame = (await lp.read({ signal })).subarray()
  const size = frame.byteLength + varintSize(frame.byteLength)
  ctx.stats.bytesIn += size
  if (progress !== undefined) progress.bytesReceived += size
  let response: SyncResponse
  try {
    response = decodeResponse(frame)
  } catch (err) {
    throw reject(ctx, err)
  }
  if (response.error !== undefined) throw remoteError(response.error, response.head)
  return response
}

/** What a client-side failure is reported as. */
export function clientError (ctx: SyncContext, err: unknown, target: SyncTarget, signal: AbortSignal, callerSignal?: AbortSignal, silent?: string): LedgerMeshError {
  if (err instanceof LedgerMeshError) return err
  if (callerSignal?.aborted === true || ctx.shutdown().aborted) {
    return new LedgerMeshError('timeout', `sync with ${target.toString()} was aborted`)
  }
  if (signal.aborted) {
    return new LedgerMeshError('timeout', silent ?? `sync source ${target.toString()} did not answer within ${ctx.timeoutMs} ms`)
  }
  if (err instanceof Error && FRAMING_ERRORS.has(err.name)) {
    return reject(ctx, new LedgerMeshError('bad_message', `bad frame from sync source ${target.toString()}: ${err.message}`)) as LedgerMeshError
  }
  return new LedgerMeshError('master_unreachable', `sync stream to ${target.toString()} failed: ${errorMessage(err)}`)
}
