import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifySchema } from 'fastify'
import swagger from '@fastify/swagger'
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { VERSION } from '../../base/version.js'
import { LedgerMeshError, errorMessage } from '../../base/errors.js'
import type { Executor } from '../../commands/executor.js'
import type { Logger } from '../../base/logger.js'
import type { ProcessStatus, Service } from '../service.js'
import type { NodePort } from '../../commands/port.js'
import type { NodeMetrics } from '../metrics.js'
import type { ProfileReports } from '../profile-reports.js'
import type { ReplicaSync } from '../replica-sync.js'
import { anylogRoutes } from './anylog.js'
import { apiRoutes } from './api.js'
import { proofRoutes } from './proof-routes.js'
import { witnessRoutes } from './witness-routes.js'
import { snapshotRoutes } from './snapshot-routes.js'
import { SnapshotFiles } from '../../ledger/snapshot/files.js'
import type { Witness } from '../../ledger/tlog/witness.js'
import { profileRoutes } from './profiles.js'
import { consoleRoutes } from './console.js'
import { policyRoutes } from './policy-routes.js'
import { History, sampleNode } from '../history.js'
import { errorReply } from './errors.js'
import { decodeUtf8 } from '../../base/utf8.js'
import { secretEquals } from '../../base/secrets.js'

export interface RestServerOptions {
  ip: string
  port: number
  executor: Executor
  log: Logger
  /** the node behind the JSON API and /health, as the commands see it */
  node: NodePort
  metrics: NodeMetrics
  /** a slave's record of the profiles' heartbeats */
  profileReports: ProfileReports
  /** the node's Blockchain Sync, once running: /health reports a replica's stalled sync */
  sync: () => ReplicaSync | undefined
  /** BLOCKCHAIN_SYNC, in ms: how often a replica hears from its source at the latest */
  syncIntervalMs: number
  /** how often the history behind GET /v1/history is sampled (default every 5 s) */
  historyEveryMs?: number
  /** when set, writes (POST) need `Authorization: Bearer <token>` */
  token?: string
  /** reads need the token too */
  readAuth?: boolean
  /** WITNESS=true: the node's checkpoint witness, served at /add-checkpoint (witness-routes.ts) */
  witness?: Witness
  /** the node's snapshots (default: those under node.home) */
  snapshots?: SnapshotFiles
  /** seconds a request may take before the server answers 503 */
  timeoutSeconds?: number
}

/**
 * The node's REST server (fastify). Routes are plugins: the AnyLog command interface at `/`,
 * the JSON API under `/v1/`, `/health` and `/metrics`.
 */
export class RestServer implements Service {
  readonly name = 'REST'
  private app?: FastifyInstance
  /** the last minutes of the node's rates and lag (GET /v1/history) */
  private history?: History
  private boundPort?: number
  private failure?: string

  constructor (private readonly opts: RestServerOptions) {}

  get port (): number | undefined { return this.boundPort }

  async start (): Promise<void> {
    const app = Fastify({
      loggerInstance: this.opts.log.child({ service: 'rest' }) as FastifyBaseLogger,
      // One log line per request would drown the node's own lines; commands log what matters.
      logController: new LogController({ disableRequestLogging: true }),
      connectionTimeout: (this.opts.timeoutSeconds ?? 20) * 1000,
      clientErrorHandler: answerClientError,
      // The route schemas are fixed in this code; test/rest-schemas.test.ts checks each against
      // the JSON Schema meta-schema. Compiling that meta-schema again at every start cost about
      // a twentieth of a node's start-up CPU.
      ajv: { customOptions: { validateSchema: false } }
    })
    app.setErrorHandler(async (err, req, reply) => {
      // fastify's own errors (bad JSON, schema failures, body too large) become our JSON error shape.
      if (err instanceof LedgerMeshError) {
        const { status, body, headers } = errorReply(err)
        return await reply.code(status).headers(headers).type('application/json').send(body)
      }
      const status = (err as { statusCode?: number }).statusCode ?? 500
      if ((err as { code?: string }).code === 'FST_ERR_CTP_BODY_TOO_LARGE') await drainBody(req.raw)
      const wrapped = status < 500 ? new LedgerMeshError('bad_command', errorMessage(err)) : err
      const { body } = errorReply(wrapped)
      return await reply.code(status).type('application/json').send(body)
    })
    // JSON bodies must be UTF-8: the default parser would turn bad bytes into U+FFFD silently.
    const parseJson = app.getDefaultJsonParser('error', 'error')
    app.removeContentTypeParser(['application/json', 'text/plain'])
    app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
      let text: string
      try {
        text = decodeUtf8(body as Buffer, 'the request body', 'bad_command')
      } catch (err) {
        done(err as Error)
        return
      }
      parseJson(req, text, (err, body) => {
        // secure-json-parse refuses __proto__ and constructor.prototype keys, but fastify then
        // calls the body "not valid JSON": say what was actually refused.
        if (err !== null && isPlainJson(text)) {
          done(new LedgerMeshError('bad_command', 'the body has a "__proto__" or "constructor": {"prototype": ...} key, which is refused (prototype pollution)'))
          return
        }
        done(err, body)
      })
    })
    app.setNotFoundHandler(async (req, reply) => {
      await reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url}` })
    })
    app.addHook('onRequest', async (req, reply) => {
      // a route open to other hosts without the token: a report that writes nothing to the
      // ledger (profile heartbeats, from runners on the workers' hosts)
      if ((req.routeOptions.config as { fromAnyHost?: boolean } | undefined)?.fromAnyHost === true) return
      const token = this.opts.token
      const isWrite = req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'OPTIONS'
      if (token === undefined) {
        // Without a token only this host may write: a write is signed with the node's own key.
        if (isWrite && !isLoopback(req.socket.remoteAddress)) {
          await reply.code(403).send({
            error: 'unauthorized',
            message: `writes from other hosts (${String(req.socket.remoteAddress)}) need REST_TOKEN to be set on this node, and the header 'Authorization: Bearer <REST_TOKEN>'`
          })
        }
        return
      }
      if (!isWrite && this.opts.readAuth !== true) return
      if (!secretEquals(req.headers.authorization, `Bearer ${token}`)) {
        await reply.code(401).header('WWW-Authenticate', 'Bearer').send({
          error: 'unauthorized',
          message: `${isWrite ? 'writes' : 'requests'} to this node need the header 'Authorization: Bearer <REST_TOKEN>'`
        })
      }
    })
    app.addHook('onResponse', async (_req, reply) => { this.opts.metrics.restRequests.inc({ status: String(reply.statusCode) }) })
    // The OpenAPI document is built from the routes' schemas: GET /openapi.json.
    await app.register(swagger, {
      openapi: {
        info: { title: 'ledgermesh node', version: VERSION, description: 'AnyLog-style command interface at /, JSON API under /v1, /health and /metrics' },
        components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } }
      }
    })
    app.get('/openapi.json', { schema: { hide: true } as FastifySchema }, async () => app.swagger())
    await app.register(anylogRoutes, { executor: this.opts.executor })
    this.history = new History(() => sampleNode(this.opts.node), this.opts.historyEveryMs)
    await app.register(apiRoutes, { node: this.opts.node, metrics: this.opts.metrics, sync: this.opts.sync, syncIntervalMs: this.opts.syncIntervalMs, history: this.history })
    await app.register(profileRoutes, { node: this.opts.node, reports: this.opts.profileReports })
    await app.register(policyRoutes, { executor: this.opts.executor })
    await app.register(proofRoutes, { executor: this.opts.executor, node: this.opts.node })
    // the snapshots under the node's home, whoever writes them (the builder; export-tiles reads them here)
    await app.register(snapshotRoutes, { snapshots: this.opts.snapshots ?? new SnapshotFiles(this.opts.node.home) })
    if (this.opts.witness !== undefined) await app.register(witnessRoutes, { node: this.opts.node, witness: this.opts.witness })
    await app.register(consoleRoutes)
    try {
      await app.listen({ host: this.opts.ip, port: this.opts.port })
    } catch (err) {
      this.failure = errorMessage(err)
      await app.close()
      throw new LedgerMeshError('bad_config', `cannot start the REST server on ${this.opts.ip}:${this.opts.port}: ${this.failure}`)
    }
    const address = app.server.address()
    this.boundPort = typeof address === 'object' && address !== null ? address.port : this.opts.port
    this.app = app
    this.history.start()
    this.opts.log.info({ ip: this.opts.ip, port: this.boundPort }, 'REST server listening')
  }

  async stop (): Promise<void> {
    this.history?.stop()
    const app = this.app
    this.app = undefined
    await app?.close()
  }

  status (): ProcessStatus {
    if (this.app !== undefined) {
      return { status: 'Running', details: `Listening on: ${this.opts.ip}:${this.boundPort}, Timeout: ${this.opts.timeoutSeconds ?? 20}, SSL: None` }
    }
    return this.failure !== undefined ? { status: 'Error', details: this.failure } : { status: 'Not declared' }
  }
}

/**
 * Requests Node's HTTP parser refuses before fastify sees them (headers over 16 KiB, broken
 * framing) get the same JSON error shape as every other refusal.
 */
function answerClientError (err: Error & { code?: string }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const [status, reason, message] = err.code === 'HPE_HEADER_OVERFLOW'
    ? [431, 'Request Header Fields Too Large', 'the request headers are over 16 KiB: put long policies in the POST body (`<p = {...}>`) and name them in the command']
    : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', 'the request did not arrive in time']
      : [400, 'Bad Request', `the HTTP request could not be parsed (${err.code ?? err.message})`]
  const body = JSON.stringify({ error: status === 408 ? 'timeout' : 'bad_command', message })
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
}

/**
 * Reads and drops what is left of a refused request's body, up to a bound, before the 413 goes
 * out on a connection about to close: closing a socket with unread data makes the kernel send
 * a reset, and a client still sending the body would get EPIPE instead of our answer (the
 * "lingering close" of nginx and Apache).
 */
async function drainBody (req: IncomingMessage, maxBytes = 8 * 2 ** 20, maxMs = 5000): Promise<void> {
  if (req.complete || req.destroyed) return
  await new Promise<void>(resolve => {
    let seen = 0
    const done = (): void => {
      clearTimeout(timer)
      req.off('data', onData).off('end', done).off('error', done).off('close', done)
      resolve()
    }
    const onData = (chunk: Buffer): void => { seen += chunk.length; if (seen > maxBytes) done() }
    const timer = setTimeout(done, maxMs)
    req.on('data', onData).once('end', done).once('error', done).once('close', done)
    req.resume()
  })
}

function isPlainJson (text: string): boolean {
  try { JSON.parse(text); return true } catch { return false }
}

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6 addresses. */
export function isLoopback (address: string | undefined): boolean {
  if (address === undefined) return false
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address
  return v4.startsWith('127.') || address === '::1'
}
