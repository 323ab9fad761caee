import { LedgerMeshError } from '../../base/errors.js'
import { parseDuration } from '../../base/duration.js'
import { asText, type Executor } from '../executor.js'
import { jsonOutput, textOutput } from '../output.js'
import type { NodePort } from '../port.js'
import { parseHostPortList } from '../../net/host-port.js'
import { formatTable } from '../table.js'
import { LEDGER_DATABASE, LEDGER_TABLE, dataLayerError } from '../data-layer.js'
import { WhereArgs, formatJson } from '../where.js'

/** Commands that start the node's services and report on them (AnyLog's deployment steps). */
export function registerNodeCommands (executor: Executor, node: NodePort): void {
  executor.register('get processes', (cmd, ctx) => {
    const rows = node.processes()
    if (formatJson(new WhereArgs(cmd, ctx))) {
      return jsonOutput(node.processesJson())
    }
    return textOutput(formatTable(['Process', 'Status', 'Details'], rows.map(r => [r.name, r.status, r.details ?? ''])), rows)
  })

  executor.register('get status', (cmd, ctx) => {
    const status = node.status()
    if (formatJson(new WhereArgs(cmd, ctx))) return jsonOutput(status)
    const head = status.ledger !== undefined ? `, ledger head seq ${status.ledger.head.seq}` : ''
    const unplaced = status.allocation?.unplaced ?? []
    const waiting = status.allocation === undefined ? '' : unplaced.length === 0 ? ', everything assigned' : `, unassigned: ${unplaced.map(u => `${u.type} ${u.name} (${u.reason})`).join('; ')}`
    const profiles = status.profiles === undefined ? '' : `, ${status.profiles.by_state.RUNNING} ${status.role === 'slave' ? 'sub-account processes' : 'profiles'} running, lease ${status.profiles.lease.valid ? 'valid' : 'not valid'}`
    // a replica its master does not admit says so, and how to get in (the log line's text)
    const admission = status.admission?.admitted === false ? `\n${status.admission.message}` : ''
    // a master on PostgreSQL: which server it writes to, and whether an acknowledged insert is on a second one
    const db = status.database
    const problem = db?.replication?.problem
    const database = db === undefined ? '' : `\nPostgreSQL primary ${db.primary ?? 'unknown'}${db.failovers.length > 0 ? ` (${db.failovers.length} failovers)` : ''}: ${problem === undefined ? `${db.replication?.synchronous_standbys ?? 0} synchronous standbys` : `warning: ${problem}`}`
    return textOutput(`${status.assigned_name} running (${status.node_type}${head})${waiting}${profiles}${admission}${database}`, status)
  })

  executor.register('run tcp server', async (cmd, ctx) => {
    const where = new WhereArgs(cmd, ctx)
    const { ip, port, peerId } = await node.startTcpServer({ ip: where.text('internal_ip'), port: where.int('internal_port', { min: 0, max: 65535 }), bind: where.bind('bind') })
    ctx.vars.set('peer_id', peerId)
    ctx.vars.set('tcp_port', port)
    return textOutput(`TCP server listening on ${ip}:${port}`, { ip, port, peer_id: peerId })
  })

  executor.register('run rest server', async (cmd, ctx) => {
    const where = new WhereArgs(cmd, ctx)
    const { ip, port } = await node.startRestServer({
      ip: where.text('internal_ip'),
      port: where.int('internal_port', { min: 0, max: 65535 }),
      bind: where.bind('bind'),
      timeoutSeconds: where.int('timeout', { min: 1, max: 3600 })
    })
    ctx.vars.set('rest_port', port)
    return textOutput(`REST server listening on ${ip}:${port}`, { ip, port })
  })

  executor.register('connect dbms', async (cmd, ctx) => {
    const where = new WhereArgs(cmd, ctx)
    const database = asText(ctx.executor.resolve(cmd.value!, ctx.vars)).trim()
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(database)) throw where.error(`'${database}' is not a database name (letters, digits and _)`)
    const ledgerNames = [...new Set([node.ledgerDatabase, LEDGER_DATABASE])]
    if (!ledgerNames.includes(database)) throw dataLayerError(`connect dbms ${database}`, `is a database of AnyLog's data layer: ledgermesh keeps only the ledger's (${ledgerNames.join(' or ')})`)
    const ledger = await node.connectDbms({
      database,
      type: where.text('type'),
      ip: where.text('ip'),
      port: where.text('port'),
      user: where.text('user'),
      password: where.text('password')
    })
    return textOutput(`Connected to ${ledger.store.kind} ledger store at ${ledger.store.location}`, { store: ledger.store.kind, location: ledger.store.location })
  })

  executor.register('create table', (cmd, ctx) => {
    const table = asText(ctx.executor.resolve(cmd.value!, ctx.vars)).trim().toLowerCase()
    if (table !== LEDGER_TABLE) throw dataLayerError(`create table ${table}`, `is a table of AnyLog's data layer: ledgermesh manages only the '${LEDGER_TABLE}' table`)
    // The store creates its tables when it is connected; this confirms they are there.
    const ledger = node.ledger
    return textOutput(`Table ledger is ready in ${ledger.store.location} (head seq ${ledger.head.seq})`, { table: 'ledger', head: ledger.head })
  })

  executor.register('run scheduler', async (cmd, ctx) => {
    const id = Number(asText(ctx.executor.resolve(cmd.value!, ctx.vars)))
    if (!Number.isInteger(id) || id < 0 || id > 100) {
      throw new LedgerMeshError('bad_command', `run scheduler: the scheduler id must be an integer from 0 to 100 (line ${cmd.pos.line})`)
    }
    await node.runScheduler(id)
    return textOutput(`Scheduler ${id} running`, { id })
  })

  executor.register('run blockchain sync', async (cmd, ctx) => {
    const where = new WhereArgs(cmd, ctx)
    const timeText = where.text('time')
    const time = timeText === undefined ? undefined : parseDuration(timeText)
    if (timeText !== undefined && time === undefined) throw where.error(`'time' must be an interval such as "30 seconds", found ${JSON.stringify(timeText)}`)
    const connectionText = where.text('connection')
    // checked before anything starts: one ip:port or a list of masters, a bad element named
    if (connectionText !== undefined) {
      try { parseHostPortList(connectionText, 'bad_command') } catch (err) { throw where.error(`'connection' must be ip:port or a comma-separated list of them: ${(err as Error).message}`) }
    }
    const { source, connection, interval } = await node.startBlockchainSync({ source: where.text('source'), connection: connectionText, interval: time })
    return textOutput(`Blockchain sync every ${interval.text} from ${source} using ${connection}`, { source, connection, interval_ms: interval.ms })
  })
}
