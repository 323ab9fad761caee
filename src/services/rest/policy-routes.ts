import type { FastifyInstance } from 'fastify'
import { LedgerMeshError } from '../../base/errors.js'
import { Executor } from '../../commands/executor.js'
import { parseScript } from '../../commands/parser.js'
import { Variables } from '../../commands/variables.js'
import { described } from './api.js'

export interface PolicyRouteOptions {
  executor: Executor
}

const ID = { type: 'object', properties: { id: { type: 'string', pattern: '^[0-9a-f]{64}$' } }, required: ['id'] }

/**
 * Searching and deleting policies in the JSON API (the console's Ledger view): the search takes
 * the command language's `where` conditions and runs `blockchain get` through the one executor,
 * so it matches exactly what the REPL and AnyLog's REST interface would.
 */
export async function policyRoutes (app: FastifyInstance, { executor }: PolicyRouteOptions): Promise<void> {
  app.get('/v1/policies/search', {
    schema: described('Policies matching the command language\'s `where` conditions, as `blockchain get <type> where <where>` answers: `type` (a policy type, `*` for any) and `where` (e.g. `name = w1 and company = acme`)', {
      querystring: {
        type: 'object',
        properties: { type: { type: 'string', pattern: '^(\\*|[A-Za-z_][A-Za-z0-9_-]{0,63})$' }, where: { type: 'string', maxLength: 4096 } },
        additionalProperties: false
      }
    })
  }, async (req) => {
    const { type = '*', where = '' } = req.query as { type?: string, where?: string }
    if (/[\r\n]/.test(where)) throw new LedgerMeshError('bad_command', 'where: one line of conditions')
    const statements = parseScript(`blockchain get ${type}${where.trim() === '' ? '' : ` where ${where.trim()}`}`)
    // one read, whatever the conditions held: anything else is not a search
    if (statements.length !== 1 || Executor.methodOf(statements[0]) !== 'GET') throw new LedgerMeshError('bad_command', `where: '${where}' is not a list of conditions`)
    const [result] = await executor.runStatements(statements, { vars: new Variables(undefined, undefined, { hideSecrets: true }), via: 'rest', executor })
    return result?.output?.value ?? []
  })

  app.delete('/v1/policies/:id', {
    schema: described('Delete a policy (signed by this node: its own policies, or any on the master or an admin node); 200 `{"id", "seq"}`', { params: ID })
  }, async (req) => {
    // the command itself, through the one executor (the id is 64 hex digits by the schema)
    const { id } = req.params as { id: string }
    const [result] = await executor.runStatements(parseScript(`blockchain delete policy where id = ${id}`), { vars: executor.vars, via: 'rest', executor })
    return result?.output?.value
  })
}
