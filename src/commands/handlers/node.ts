import { LedgerMeshError } from '../../base/errors.js'
import { parseDuration } from '../../base/duration.js'
import { libp2pPrivateKey } from '../../node/identity.js'
import type { LedgerMeshNode } from '../../node/node.js'
import { P2PHost } from '../../services/p2p.js'
import { RestServer } from '../../services/rest/server.js'
import { asText, type Executor } from '../executor.js'
import { jsonOutput, textOutput } from '../output.js'
import { formatTable } from '../table.js'
import { WhereArgs, formatJson } from '../where.js'


/** Commands that start the node's services and report on them (AnyLog's deployment steps). */
export function registerNodeCommands (executor: Executor, node: LedgerMeshNode): void {
  executor.register('get processes', (cmd, ctx) => {
    const rows = node.processes()
    if (formatJson(new WhereArgs(cmd, ctx))) {
      return jsonOutput(node.processesJson())
    }
    return textOutput(formatTable(['Process', 'Status', 'Details'], rows.map(r => [r.name, r.status, r.details ?? ''])), rows)
  })

  executor.register('get status', (cmd, ctx) => {
    const address = `${node.config.externalIp}:${node.tcp?.running === true ? node.tcp.port : node.config.serverPort}`
    const status = {
      assigned_name: `${node.name}@${address}`,
      status: 'running',
      role: node.role,
      node: node.name,
      peer_id: node.tcp?.running === true ? node.tcp.peerId : undefined,
      // NETWORK_KEY: the key's fingerprint, to compare nodes' keys without showing them
      private_network: node.config.networkKey === undefined ? false : { key_id: node.config.networkKey.id },
      public_key: node.signer.publicKey,
      uptime_seconds: Math.round((Date.now() - node.startedAt.getTime()) / 1000),
      ledger: node.hasLedger
        ? { store: node.ledger.store.kind, head: node.ledger.head, policies: node.ledger.state.size, master_key: node.ledger.masterKey }
        : undefined,
      sync: node.syncProtocol === undefined
        ? undefined
        : {
            ...node.syncProtocol.stats,
            ...(node.sync?.keepsReplica === true ? { lag: node.sync.lag, recovered: node.sync.recovered, outbox: node.sync.outboxSize, outbox_dropped: node.sync.outboxDropped, ...(node.sync.lastOutboxDrop !== undefined ? { last_outbox_drop: node.sync.lastOutboxDrop } : {}) } : {}),
            ...(node.replicaRecovery !== undefined ? { rebuilt_from_zero: node.replicaRecovery } : {})
          },
      allocation: node.allocator?.summary(),
      profiles: node.operator === undefined ? undefined : { lease: node.operator.leaseSummary(), by_state: node.operator.countByState() }
    }
    if (formatJson(new WhereArgs(cmd, ctx))) return jsonOutput(status)
    const head = node.hasLedger ? `, ledger head seq ${node.ledger.head.seq}` : ''
    const unplaced = status.allocation?.unplaced ?? []
    const waiting = status.allocation === undefined ? '' : unplaced.length === 0 ? ', everything assigned' : `, unassigned: ${unplaced.map(u => `${u.type} ${u.name} (${u.reason})`).join('; ')}`
    const profiles = status.profiles === undefined ? '' : `, ${status.profiles.by_state.RUNNING} profiles running, lease ${status.profiles.lease.valid ? 'valid' : 'not valid'}`
    return textOutput(`${status.assigned_name} running (${node.role}${head})${waiting}${profiles}`, status)
  })

  executor.register('run tcp server', async (cmd, ctx) => {
    const where = new WhereArgs(cmd, ctx)
    const ip = where.text('internal_ip') ?? node.config.ip
    const port = where.int('internal_port', { min: 0, max: 65535 }) ?? node.config.serverPort
    const host = await node.startService('tcp', new P2PHost({
      privateKey: libp2pPrivateKey(node.signer),
      ip,
      port,
      allow: [...new Set([ip, node.config.externalIp, '127.0.0.1'])],
      networkKey: node.config.networkKey,
      log: node.log.child({ service: 'p2p' })
    }))
    ctx.vars.set('peer_id', host.peerId)
    ctx.vars.set('tcp_port', host.port)
    return textOutput(`TCP server listening on ${ip}:${host.port}`, { ip, port: host.port, peer_id: host.peerId })
  })

  executor.register('run rest server', async (cmd, ctx) => {
    const where = new WhereArgs(cmd, ctx)
    const ip = where.text('internal_ip') ?? node.config.restBind
    const port = where.int('internal_port', { min: 0, max: 65535 }) ?? node.config.restPort
    const timeout = where.int('timeout', { min: 1, max: 3600 })
    const rest = await node.startService('rest', new RestServer({
      ip, port, timeoutSeconds: timeout, executor: ctx.executor, log: node.log, node, metrics: node.metrics, token: node.config.restToken, readAuth: node.config.restReadAuth
    }))
    ctx.vars.set('rest_port', rest.port)
    return textOutput(`REST server listening on ${ip}:${rest.port}`, { ip, port: rest.port })
  })

  executor.register('connect dbms', async (cmd, ctx) => {
    const where = new WhereArgs(cmd, ctx)
    const database = asText(ctx.executor.resolve(cmd.value!, ctx.vars)).trim()
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(database)) throw where.error(`'${database}' is not a database name (letters, digits and _)`)
    const requested = where.text('type') ?? node.config.db.type
    const type = requested.toLowerCase() === 'psql' ? 'psql' : 'level'
    const ledger = await node.connectLedger({
      type,
      ip: where.text('ip') ?? node.config.db.ip,
      port: where.int('port', { min: 1, max: 65535 }) ?? node.config.db.port,
      user: where.text('user') ?? node.config.db.user,
      password: where.text('password') || node.config.db.password || undefined,
      database
    })
    return textOutput(`Connected to ${ledger.store.kind} ledger store at ${ledger.store.location}`, { store: ledger.store.kind, location: ledger.store.location })
  })

  executor.register('create table', (cmd, ctx) => {
    const table = asText(ctx.executor.resolve(cmd.value!, ctx.vars)).trim().toLowerCase()
    if (table !== 'ledger') {
      throw new LedgerMeshError('bad_command', `create table: only the 'ledger' table is managed by ledgermesh, not '${table}'`)
    }
    // The store creates its tables when it is connected; this confirms they are there.
    const ledger = node.ledger
    return textOutput(`Table ledger is ready in ${ledger.store.location} (head seq ${ledger.head.seq})`, { table: 'ledger', head: ledger.head })
  })

  executor.register('run scheduler', async (cmd, ctx) => {
    const id = Number(asText(ctx.executor.resolve(cmd.value!, ctx.vars)))
    if (!Number.isInteger(id) || id < 0 || id > 100) {
      throw new LedgerMeshError('bad_command', `run scheduler: the scheduler id must be an integer from 0 to 100 (line ${cmd.pos.line})`)
    }
    await node.scheduler.runScheduler(id)
    return textOutput(`Scheduler ${id} running`, { id })
  })

  executor.register('run blockchain sync', async (cmd, ctx) => {
    const where = new WhereArgs(cmd, ctx)
    const timeText = where.text('time') ?? node.config.blockchainSync.text
    const interval = parseDuration(timeText)
    if (interval === undefined) throw where.error(`'time' must be an interval such as "30 seconds", found ${JSON.stringify(timeText)}`)
    const source = where.text('source') ?? node.config.blockchainSource
    const connection = where.text('connection') ?? node.config.ledgerConn
    await node.startBlockchainSync({ source, connection, interval })
    return textOutput(`Blockchain sync every ${interval.text} from ${source} using ${connection}`, { source, connection, interval_ms: interval.ms })
  })
}
