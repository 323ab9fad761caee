import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { LedgerMeshError } from '../../base/errors.js'
import { Executor } from '../../commands/executor.js'
import type { CommandOutput } from '../../commands/output.js'
import { parseScript, parseScriptCached } from '../../commands/parser.js'
import { Variables } from '../../commands/variables.js'
import { decodeUtf8 } from '../../base/utf8.js'
import { errorReply } from './errors.js'

export interface AnyLogRouteOptions {
  executor: Executor
}

/**
 * AnyLog's REST interface: `GET /` and `POST /` with the command in the `command` header
 * (AnyLog clients send `User-Agent: AnyLog/1.23`; any User-Agent works here). Reads go by
 * GET, writes by POST. A POST body may hold statements such as `<new_policy = {...}>` that
 * bind the variables the command names; they live only for that request. Reads never see a
 * secret (src/secrets.ts), and every answer is masked by the executor.
 */
export async function anylogRoutes (app: FastifyInstance, opts: AnyLogRouteOptions): Promise<void> {
  // AnyLog clients send bodies with all sorts of content types: read every body as text here.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 1024 * 1024 }, (_req, body, done) => {
    try {
      done(null, decodeUtf8(body as Buffer, 'the request body', 'bad_command'))
    } catch (err) {
      done(err as Error)
    }
  })

  const headers = {
    type: 'object',
    properties: {
      command: { type: 'string', description: 'the command to run, e.g. `get processes where format=json`' },
      destination: { type: 'string', description: 'AnyLog relay target; ledgermesh answers locally' }
    }
  }
  const schema = (method: 'GET' | 'POST') => ({
    summary: method === 'GET' ? 'Run a read command (AnyLog style)' : 'Run a write command (AnyLog style)',
    headers,
    querystring: { type: 'object', properties: { command: { type: 'string' } } }
  })

  app.get('/', { schema: schema('GET') }, async (req, reply) => await serve('GET', req, reply))
  app.post('/', { schema: schema('POST') }, async (req, reply) => await serve('POST', req, reply))

  async function serve (method: 'GET' | 'POST', req: FastifyRequest, reply: FastifyReply): Promise<void> {
    try {
      const command = commandOf(req)
      const vars = opts.executor.vars.child()
      const bodyText = typeof req.body === 'string' ? req.body.trim() : ''
      const body = method === 'POST' && bodyText !== '' ? parseScript(bodyText, { source: 'request body' }) : []
      // the same few command texts come again and again: parsed once each
      const statements = parseScriptCached(command, { source: 'command header' })
      // Writes need POST (which needs the token); AnyLog's clients also POST reads and
      // assignments (`company_name = New Company`), and a POST may do anything a GET may.
      const needed = [...body, ...statements].some(s => Executor.methodOf(s) === 'POST') ? 'POST' : 'GET'
      if (needed === 'POST' && method === 'GET') {
        throw new LedgerMeshError('wrong_method', `'${command}' changes the node: send it with POST`)
      }
      // Body bindings live only in this request; the command's own assignments set node
      // variables over POST (which needs the token), and live only in the request over GET:
      // a read must not change what the node's scripts and later commands see.
      await opts.executor.runStatements(body, { vars, via: 'rest', executor: opts.executor })
      // A read (GET, which needs no token by default) never sees a secret: every `!x` and `$X`
      // it makes resolves to what may be shown, `***` for a secret, so no read can print,
      // compare or cast one. Writes (POST, which need the token) use the real values.
      const commandVars = method === 'POST' ? new Variables(vars, opts.executor.vars) : new Variables(vars, undefined, { hideSecrets: true })
      const results = await opts.executor.runStatements(statements, { vars: commandVars, via: 'rest', executor: opts.executor })
      const outputs = results.flatMap(r => r.output === undefined ? [] : [r.output])
      send(reply, outputs)
    } catch (err) {
      opts.executor.noteError(err, 'rest')
      const { status, body, headers } = errorReply(err)
      await reply.code(status).headers(headers).type('application/json').send(body)
    }
  }
}

function commandOf (req: FastifyRequest): string {
  const header = req.headers.command
  const query = (req.query as { command?: string } | undefined)?.command
  const command = (Array.isArray(header) ? header[0] : header) ?? query
  if (command === undefined || command.trim() === '') {
    throw new LedgerMeshError('bad_command', 'missing the `command` header (e.g. -H "command: get status")')
  }
  return command
}

function send (reply: FastifyReply, outputs: CommandOutput[]): void {
  if (outputs.length === 1) {
    const [out] = outputs
    void reply.type(out.contentType === 'json' ? 'application/json' : 'text/plain; charset=utf-8').send(out.text)
    return
  }
  void reply.type('text/plain; charset=utf-8').send(outputs.map(o => o.text).join('\n'))
}
