import pTimeout from 'p-timeout'
import type { FastifyInstance, FastifySchema } from 'fastify'
import { LedgerMeshError } from '../../base/errors.js'
import { type Predicate, selectPolicies } from '../../ledger/select.js'
import type { NodePort } from '../../commands/port.js'
import { signUnlessSigned } from '../../policies/sign-input.js'
import { type Policy, policyBody, policyType } from '../../policies/policy.js'
import { checkPolicyShape, validatePolicy, verifyPolicy } from '../../policies/validate.js'
import { parseDuration } from '../../base/duration.js'
import type { NodeMetrics } from '../metrics.js'
import type { ReplicaSync } from '../replica-sync.js'
import { errorReply } from './errors.js'
import type { HistorySample } from '../history.js'

/** How long /health waits for the ledger store to answer before calling the node unhealthy. */
const STORE_HEALTH_TIMEOUT_MS = 2000

export interface ApiRouteOptions {
  node: NodePort
  metrics: NodeMetrics
  /** the node's Blockchain Sync, once running */
  sync: () => ReplicaSync | undefined
  /** BLOCKCHAIN_SYNC, in ms */
  syncIntervalMs: number
  /** the node's sampled rates and lag */
  history: { list: () => HistorySample[], everyMs: number }
}

/** Longest a blocking read may wait (`wait=` is capped to it). */
const MAX_WAIT_MS = 5 * 60_000
const RESERVED_PARAMS = new Set(['type', 'limit', 'index', 'wait'])

/** A route schema with its OpenAPI summary (fastify's type knows only the validation keys). */
export const described = (summary: string, schema: FastifySchema = {}): FastifySchema => ({ summary, ...schema }) as FastifySchema

/** Turns `?name=w1&company=acme` into an `and` of equality conditions. */
function filtersOf (query: Record<string, string>): Predicate | undefined {
  const terms: Predicate[] = Object.entries(query)
    .filter(([key]) => !RESERVED_PARAMS.has(key))
    .map(([field, value]) => ({ kind: 'cmp', field, op: '=', value }))
  return terms.length === 0 ? undefined : terms.length === 1 ? terms[0] : { kind: 'and', terms }
}

/**
 * The JSON API under /v1/, plus /health and /metrics. Reads answer from the local replica;
 * `index` + `wait` make a blocking read (Consul's blocking queries): the answer comes as soon
 * as the ledger passes `index`, or when `wait` runs out.
 */
export async function apiRoutes (app: FastifyInstance, { node, metrics, sync, syncIntervalMs, history }: ApiRouteOptions): Promise<void> {
  app.get('/health', { schema: described('Node health: 200 while healthy, 503 with the reason otherwise') }, async (_req, reply) => {
    const base = { node: node.name, role: node.role }
    if (!node.hasLedger) return await reply.code(503).send({ ...base, status: 'unhealthy', reason: 'no ledger store is connected' })
    const head = node.ledger.head
    try {
      await pTimeout(node.ledger.store.head(), { milliseconds: STORE_HEALTH_TIMEOUT_MS, message: `no answer within ${STORE_HEALTH_TIMEOUT_MS} ms` })
    } catch (err) {
      return await reply.code(503).send({ ...base, status: 'unhealthy', head, reason: `ledger store ${node.ledger.store.location} unreachable: ${err instanceof Error ? err.message : String(err)}` })
    }
    const status = node.status()
    const fork = status.fork_detected
    if (fork !== undefined) {
      return await reply.code(503).send({ ...base, status: 'unhealthy', head, reason: `fork detected: ${fork.reason}; this node stopped following the log and serves reads of what it had`, fork_detected: fork })
    }
    const lag = sync()?.lag
    if (lag !== undefined) {
      const limit = (syncIntervalMs * 3) / 1000 + 5
      if (lag.seconds === undefined || lag.seconds > limit) {
        return await reply.code(503).send({ ...base, status: 'unhealthy', head, reason: lag.seconds === undefined ? 'the replica has never synced with its source' : `sync stalled: last heard from the source ${Math.round(lag.seconds)} s ago (limit ${limit} s)` })
      }
    }
    // healthy, but an insert acknowledged now could be lost with the database's primary
    const problem = status.database?.replication?.problem
    const warnings = problem === undefined ? [] : [`PostgreSQL: ${problem}`]
    return await reply.send({ ...base, status: 'ok', head, ...(warnings.length > 0 ? { warnings } : {}) })
  })

  app.get('/metrics', { schema: described('Prometheus metrics (text format)') }, async (_req, reply) => {
    await reply.type(metrics.registry.contentType).send(await metrics.registry.metrics())
  })

  app.get('/v1/processes', { schema: described('The node\'s processes, as `get processes where format=json`') }, async () => {
    return node.processesJson()
  })

  app.get('/v1/status', { schema: described('The node\'s status, as `get status`: who it is, its ledger and sync, and on a master among several which master writes (master_role)') }, async () => {
    return node.status()
  })

  app.get('/v1/network', { schema: described('Every node the ledger declares (type, addresses, key); on a master also the head each replica holds, its lag and last sync, and the lease of every worker and slave') }, async () => {
    return node.network()
  })

  app.get('/v1/history', { schema: described('The last ten minutes of the node, sampled every 5 s: `t` (ms), `head`, sync `entries_in` and `entries_out` (counters: rates come from two samples), and `lag` (a replica\'s behind its source; a master\'s largest among its replicas)') }, async () => {
    return { every_ms: history.everyMs, samples: history.list() }
  })

  app.get('/v1/ledger/summary', { schema: described('The ledger at a glance: the local head, the master-signed head, and how many policies of each type') }, async () => {
    const { ledger } = node
    return { head: ledger.head, signed: ledger.signedHead ?? null, policies: ledger.state.size, types: Object.fromEntries(ledger.state.types().map(type => [type, ledger.state.countOfType(type)])) }
  })

  app.get('/v1/ledger/head', { schema: described('The local ledger head, the master-signed head it holds, and the latest checkpoint a quorum of witnesses cosigned (when the network has witnesses)') }, async () => {
    const witnessed = node.witnessed
    return { ...node.ledger.head, signed: node.ledger.signedHead ?? null, witnessed: witnessed === undefined ? null : { size: witnessed.size, cosigners: witnessed.cosigners } }
  })

  app.get('/v1/policies', {
    schema: described('Policies from the local replica; extra parameters filter by field (case-insensitive)', {
      querystring: {
        type: 'object',
        properties: {
          type: { type: 'string', minLength: 1, description: 'policy type, or * (default)' },
          limit: { type: 'integer', minimum: 1, maximum: 100000 },
          index: { type: 'integer', minimum: 0, description: 'blocking read: answer once the ledger head passes this seq' },
          wait: { type: 'string', description: 'how long a blocking read may wait, e.g. 30s (at most 5 minutes)' }
        },
        additionalProperties: { type: 'string' }
      }
    })
  }, async (req, reply) => {
    const query = req.query as Record<string, string> & { limit?: number, index?: number }
    if (query.index !== undefined) {
      const waitText = query.wait ?? '5 minutes'
      const wait = parseDuration(waitText.replace(/^(\d+)(ms|s|m)$/, '$1 $2'))
      if (wait === undefined) throw new LedgerMeshError('bad_command', `wait=${JSON.stringify(waitText)} is not a duration such as 30s, 500ms or 2m`)
      await node.ledger.waitForSeq(Number(query.index) + 1, Math.min(wait.ms, MAX_WAIT_MS))
    }
    let policies: Policy[] = selectPolicies(node.ledger.state, { types: [query.type ?? '*'], where: filtersOf(query) })
    if (query.limit !== undefined) policies = policies.slice(0, Number(query.limit))
    void reply.header('X-Ledgermesh-Index', String(node.ledger.head.seq))
    return { index: node.ledger.head.seq, policies: policies.map(p => node.ledger.state.view(p)) }
  })

  app.get('/v1/policies/:id', {
    schema: described('One policy by id; `X-Ledgermesh-Seq` carries its seq on the ledger (absent while it waits in the outbox)', { params: { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9a-f]{64}$' } }, required: ['id'] } })
  }, async (req, reply) => {
    const { id } = req.params as { id: string }
    const policy = node.ledger.state.get(id)
    if (policy === undefined) {
      const { status, body } = errorReply(new LedgerMeshError('not_found', `no policy with id ${id}`, { id }))
      return await reply.code(status).send(body)
    }
    const seq = node.ledger.state.seqOf(id)
    if (seq !== undefined) void reply.header('X-Ledgermesh-Seq', String(seq))
    return node.ledger.state.view(policy)
  })

  app.post('/v1/policies/check', {
    // writes nothing: open without the token, as reads are (the console's editor checks as you type)
    config: { fromAnyHost: true },
    schema: described('Check a policy without inserting it: its shape, its type\'s schema and the reserved fields (a signed one: also its id and signature); 200 `{"valid": true, "type"}`, or 400 naming the problem', { body: { type: 'object' } }),
    attachValidation: true
  }, async (req) => {
    const policy = checkPolicyShape(req.body)
    const signed = typeof policyBody(policy).signature === 'string'
    validatePolicy(policy, { requireSigned: signed })
    if (signed) verifyPolicy(policy)
    return { valid: true, type: policyType(policy) }
  })

  app.post('/v1/policies', {
    schema: described('Insert a policy (signed by this node unless it carries a signature; a profile\'s plain settings are sealed to the masters\' keys first)', { body: { type: 'object', minProperties: 1, maxProperties: 1 } }),
    // The schema documents the body; checkPolicyShape words the error (AnyLog's "Wrong policy structure").
    attachValidation: true
  }, async (req, reply) => {
    const policy = checkPolicyShape(req.body)
    // an unsigned profile's plain settings are sealed to the masters' keys before signing
    const signed = signUnlessSigned(policy, node.signer, { masterKeys: node.hasLedger ? node.ledger.masterKeys : [] })
    const local = (req.query as { local?: string } | undefined)?.local === 'true'
    const result = await node.insert({ op: 'put', policy: signed }, { local })
    return await reply.code(201).send(result)
  })
}

