import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { LedgerMeshError, errorMessage } from '../base/errors.js'
import { parseSnapshotPath } from '../ledger/snapshot/files.js'
import type { SnapshotProtocol } from '../protocols/snapshot/index.js'

/**
 * Somewhere a node reads snapshot files from, by their layout path (`snapshot/latest`,
 * `snapshot/<size>/manifest.json`, `snapshot/<size>/chunk/<index>`): a peer over the snapshot
 * protocol or a static mirror over HTTP. A source is trusted for nothing: the bootstrap checks
 * every file it gets, so a source only says where to ask next when one withholds or lies.
 */
export interface SnapshotSource {
  /** what logs and errors call it: `master 127.0.0.1:32048`, `mirror https://...` */
  readonly name: string
  /** The file's bytes; `not_found` when the source has none, `timeout`/`unreachable` when it does not answer. */
  get: (path: string) => Promise<Buffer>
}

/** One GET from a mirror gives up after this long (a chunk is a few MiB at most). */
const MIRROR_TIMEOUT_MS = 30_000

/** A libp2p peer (a master, the slave, a worker) serving its snapshots over `protocol`. */
export function peerSnapshotSource (protocol: SnapshotProtocol, target: Multiaddr | PeerId, name: string): SnapshotSource {
  return {
    name,
    get: async path => await protocol.fetch(target, path)
  }
}

/**
 * A static web server holding a `ledgermesh export-tiles` directory (its `snapshot/...` files),
 * or a node's own HTTP routes, at `url`.
 */
export function mirrorSnapshotSource (url: string, opts: { headers?: Record<string, string>, timeoutMs?: number } = {}): SnapshotSource {
  let base: URL
  try {
    base = new URL(url.endsWith('/') ? url : `${url}/`)
  } catch {
    throw new LedgerMeshError('bad_config', `snapshot mirror: ${JSON.stringify(url)} is not a URL`)
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new LedgerMeshError('bad_config', `snapshot mirror: ${url} is not an http(s) URL`)
  const timeoutMs = opts.timeoutMs ?? MIRROR_TIMEOUT_MS
  const name = `mirror ${base.href}`
  return {
    name,
    get: async path => {
      if (parseSnapshotPath(path) === undefined) throw new LedgerMeshError('bad_message', `${name}: ${JSON.stringify(path.slice(0, 80))} is not a snapshot path`)
      let res: Response
      try {
        res = await fetch(new URL(path, base), { headers: opts.headers, signal: AbortSignal.timeout(timeoutMs) })
      } catch (err) {
        if ((err as Error).name === 'TimeoutError') throw new LedgerMeshError('timeout', `${name}: GET ${path} got no answer within ${timeoutMs} ms`)
        throw new LedgerMeshError('unreachable', `${name}: GET ${path} failed: ${errorMessage((err as { cause?: unknown }).cause ?? err)}`)
      }
      if (res.status === 404) {
        await res.body?.cancel()
        throw new LedgerMeshError('not_found', `${name} has no ${path}`, { path })
      }
      if (!res.ok) throw new LedgerMeshError('unreachable', `${name}: GET ${path} answered ${res.status} ${(await res.text()).slice(0, 200)}`.trimEnd())
      try {
        return Buffer.from(await res.arrayBuffer())
      } catch (err) {
        throw new LedgerMeshError((err as Error).name === 'TimeoutError' ? 'timeout' : 'unreachable', `${name}: GET ${path} broke off: ${errorMessage(err)}`)
      }
    }
  }
}
