import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifySchema } from 'fastify'
import swagger from '@fastify/swagger'
import { VERSION } from '../../version.js'
import { LedgerMeshError, errorMessage } from '../../errors.js'
import type { Executor } from '../../commands/executor.js'
import type { Logger } from '../../node/logger.js'
import type { ProcessStatus, Service } from '../service.js'
import type { LedgerMeshNode } from '../../node/node.js'
import type { NodeMetrics } from '../metrics.js'
import { anylogRoutes } from './anylog.js'
import { apiRoutes } from './api.js'
import { profileRoutes } from './profiles.js'
import { errorReply } from './errors.js'

export interface RestServerOptions {
  ip: string
  port: number
  executor: Executor
  log: Logger
  /** the node behind the JSON API, /health and /metrics */
  node: LedgerMeshNode
  metrics: NodeMetrics
  /** when set, writes (POST) need `Authorization: Bearer <token>` */
  token?: string
  /** reads need the token too */
  readAuth?: boolean
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
  private boundPort?: number
  private failure?: string

  constructor (private readonly opts: RestServerOptions) {}

  get port (): number | undefined { return this.boundPort }

  async start (): Promise<void> {
    const app = Fastify({
      loggerInstance: this.opts.log.child({ service: 'rest' }) as FastifyBaseLogger,
      // One log line per request would drown the node's own lines; commands log what matters.
      logController: new LogController({ disableRequestLogging: true }),
      connectionTimeout: (this.opts.timeoutSeconds ?? 20) * 1000
    })
    app.setErrorHandler(async (err, _req, reply) => {
      // fastify's own errors (bad JSON, schema failures, body too large) become our JSON error shape.
      if (err instanceof LedgerMeshError) {
        const { status, body } = errorReply(err)
        return await reply.code(status).type('application/json').send(body)
      }
      const status = (err as { statusCode?: number }).statusCode ?? 500
      const wrapped = status < 500 ? new LedgerMeshError('bad_command', errorMessage(err)) : err
      const { body } = errorReply(wrapped)
      return await reply.code(status).type('application/json').send(body)
    })
    app.setNotFoundHandler(async (req, reply) => {
      await reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url}` })
    })
    app.addHook('onRequest', async (req, reply) => {
      const token = this.opts.token
      if (token === undefined) return
      const isWrite = req.method !== 'GET' && req.method !== 'HEAD' && req.method !== 'OPTIONS'
      if (!isWrite && this.opts.readAuth !== true) return
      if (req.headers.authorization !== `Bearer ${token}`) {
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
    await app.register(apiRoutes, { node: this.opts.node, metrics: this.opts.metrics })
    await app.register(profileRoutes, { node: this.opts.node })
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
    this.opts.log.info({ ip: this.opts.ip, port: this.boundPort }, 'REST server listening')
  }

  async stop (): Promise<void> {
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
