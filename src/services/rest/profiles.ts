import type { FastifyInstance, FastifySchema } from 'fastify'
import { LedgerMeshError } from '../../base/errors.js'
import type { NodePort } from '../../commands/port.js'
import { profilesView } from '../../commands/profiles-view.js'
import type { Heartbeat, ProfileReports } from '../profile-reports.js'
import { heartbeatProofHolds } from '../../policies/heartbeat-proof.js'
import { policyBody } from '../../policies/policy.js'

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
          state: { type: 'string', maxLength: 32 },
          // the worker's signature over the profile id and its name (HEARTBEAT_PROOF in the runner's environment)
          proof: { type: 'string', pattern: '^[0-9a-f]{128}$' }
        }
      }
    })
  }, async (req, reply) => {
    slaveOnly()
    const beat = req.body as Heartbeat & { proof?: string }
    // only a runner its worker started for that profile can prove it (a stranger could
    // otherwise report a dead profile as running, or skew which worker runs what)
    const worker = node.hasLedger ? node.ledger.state.findByName('worker', beat.worker) : undefined
    const key = worker === undefined ? undefined : String(policyBody(worker).public_key)
    if (key === undefined || !heartbeatProofHolds(key, beat.profile_id, beat.worker, beat.proof)) {
      throw new LedgerMeshError('unauthorized', worker === undefined
        ? `no worker '${beat.worker}' is declared on this slave's ledger: heartbeat refused`
        : `the heartbeat's proof is ${beat.proof === undefined ? 'missing' : 'not worker \'' + beat.worker + '\'s signature'}: runners send HEARTBEAT_PROOF from their environment`)
    }
    const { proof: _proof, ...report } = beat
    reports.record(report)
    return await reply.code(204).send()
  })

  app.get('/v1/profiles/reports', { schema: described('Which worker runs which profile, with each profile\'s recent runs (slave)') }, async () => {
    slaveOnly()
    return { slave: node.name, profiles: reports.list() }
  })
}
