import type { FastifyInstance, FastifySchema } from 'fastify'
import { LedgerMeshError } from '../../base/errors.js'
import type { NodePort } from '../../commands/port.js'
import { profilesView } from '../../commands/profiles-view.js'
import type { Heartbeat, ProfileReports } from '../profile-reports.js'

const described = (summary: string, schema: FastifySchema = {}): FastifySchema => ({ summary, ...schema }) as FastifySchema

/**
 * Profile routes. `GET /v1/profiles` is `get profiles where format=json` on any role. The
 * heartbeat routes are the slave's: profile processes POST a heartbeat every few seconds to
 * their SLAVE_URL, and the slave answers which worker runs which profile.
 */
export async function profileRoutes (app: FastifyInstance, { node, reports }: { node: NodePort, reports: ProfileReports }): Promise<void> {
  app.get('/v1/profiles', { schema: described('Profiles as this node sees them: a worker\'s processes, a slave\'s reports, the master\'s placement') }, async () => {
    return profilesView(node).json
  })

  const slaveOnly = () => {
    if (!node.roles.includes('slave')) throw new LedgerMeshError('not_found', `this node is a ${node.role}: profile heartbeats go to the profile's slave (SLAVE_URL)`)
  }

  app.post('/v1/profiles/heartbeat', {
    // runners on the workers' hosts report here without the REST token (they are not given
    // it): a heartbeat only updates the slave's in-memory reports, never the ledger
    config: { fromAnyHost: true },
    schema: described('A profile process reports that it runs (slave); open to other hosts without the REST token', {
      body: {
        type: 'object',
        required: ['profile_id', 'worker', 'pid'],
        additionalProperties: false,
        properties: {
          profile_id: { type: 'string', pattern: '^[0-9a-f]{64}$' },
          profile_name: { type: 'string', maxLength: 128 },
          kind: { type: 'string', maxLength: 64 },
          worker: { type: 'string', minLength: 1, maxLength: 128 },
          pid: { type: 'integer', minimum: 1 },
          state: { type: 'string', maxLength: 32 }
        }
      }
    })
  }, async (req, reply) => {
    slaveOnly()
    reports.record(req.body as Heartbeat)
    return await reply.code(204).send()
  })

  app.get('/v1/profiles/reports', { schema: described('Which worker runs which profile, with each profile\'s recent runs (slave)') }, async () => {
    slaveOnly()
    return { slave: node.name, profiles: reports.list() }
  })
}
