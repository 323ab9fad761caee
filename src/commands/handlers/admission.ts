import { LedgerMeshError } from '../../base/errors.js'
import { parseDuration } from '../../base/duration.js'
import type { Executor } from '../executor.js'
import { textOutput } from '../output.js'
import type { NodePort } from '../port.js'
import { WhereArgs } from '../where.js'

const DAY_MS = 24 * 60 * 60 * 1000

/** `ttl = 1 hour`, `ttl = 30 minutes`, `ttl = 7 days`. */
function ttlMs (text: string): number | undefined {
  const days = /^\s*(\d+)\s*days?\s*$/i.exec(text)
  if (days !== null) return Number(days[1]) * DAY_MS
  return parseDuration(text)?.ms
}

/** Admission commands, on the master: join tokens, admitting and revoking node keys. */
export function registerAdmissionCommands (executor: Executor, node: NodePort): void {
  const gatekeeperOf = (command: string) => {
    const admission = node.admission
    if (admission === undefined) {
      throw new LedgerMeshError('bad_command', `${command}: only the master admits nodes (this node is a ${node.role}${node.role === 'master' ? ' whose blockchain sync is not running yet' : ''})`)
    }
    return admission
  }
  const keyOf = (where: WhereArgs): string => {
    const key = where.requireText('key').toLowerCase()
    if (!/^[0-9a-f]{64}$/.test(key)) throw where.error(`'key' must be a node's public key (64 hex characters, as 'get status' shows it), found ${JSON.stringify(key.slice(0, 80))}`)
    return key
  }

  executor.register('create join token', async (cmd, ctx) => {
    const gatekeeper = gatekeeperOf('create join token')
    const where = new WhereArgs(cmd, ctx)
    const ttlText = where.text('ttl')
    const ttl = ttlText === undefined ? undefined : ttlMs(ttlText)
    if (ttlText !== undefined && ttl === undefined) throw where.error(`'ttl' must be a duration such as "1 hour", "30 minutes" or "7 days", found ${JSON.stringify(ttlText)}`)
    const uses = where.int('uses', { min: 1, max: 1_000_000 })
    const token = await gatekeeper.createToken({ ttlMs: ttl, uses })
    return textOutput(token.token, { token: token.token, token_id: token.tokenId, expires: token.expires, uses: token.uses })
  })

  executor.register('admit node', async (cmd, ctx) => {
    const gatekeeper = gatekeeperOf('admit node')
    const where = new WhereArgs(cmd, ctx)
    const key = keyOf(where)
    const result = await gatekeeper.admit(key, { name: where.text('name'), via: 'admin' })
    return textOutput(result.already ? `Key ${key} was already admitted` : `Key ${key} admitted (seq ${result.seq})`, { key, seq: result.seq, already: result.already })
  })

  executor.register('approve master', async (cmd, ctx) => {
    const key = keyOf(new WhereArgs(cmd, ctx))
    const result = await node.approveMaster(key)
    return textOutput(result.already ? `Master ${result.name} (key ${key}) was already trusted` : `Master ${result.name} (key ${key}) declared (seq ${result.seq})`, result)
  })

  executor.register('revoke node', async (cmd, ctx) => {
    const gatekeeper = gatekeeperOf('revoke node')
    const where = new WhereArgs(cmd, ctx)
    const key = keyOf(where)
    const result = await gatekeeper.revoke(key, where.text('reason'))
    const removed = result.declarations.length === 0 ? 'no declarations' : `declarations removed: ${result.declarations.join(', ')}`
    return textOutput(`Key ${key} revoked${result.already ? ' (it already was)' : ''}; ${removed}`, { key, declarations: result.declarations, already: result.already })
  })
}
