import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import { anylogRoutes } from '../src/services/rest/anylog.js'
import { apiRoutes } from '../src/services/rest/api.js'
import { consoleRoutes } from '../src/services/rest/console.js'
import { policyRoutes } from '../src/services/rest/policy-routes.js'
import { profileRoutes } from '../src/services/rest/profiles.js'

// A node compiles its REST routes' schemas without checking them against the JSON Schema
// meta-schema (that costs start-up time): here every route's schema is compiled once with
// fastify's default compiler, which does check them, so a broken schema fails a test, not a
// request. The routes are registered only; no handler runs, so their dependencies are stubs.

const stub = {} as any

async function routesWithSchemas (app: FastifyInstance): Promise<string[]> {
  const routes: string[] = []
  app.addHook('onRoute', route => { if (route.schema !== undefined) routes.push(`${String(route.method)} ${route.url}`) })
  await app.register(anylogRoutes, { executor: stub })
  await app.register(apiRoutes, { node: stub, metrics: stub, sync: () => undefined, syncIntervalMs: 1000, history: stub })
  await app.register(profileRoutes, { node: stub, reports: stub })
  await app.register(policyRoutes, { executor: stub })
  await app.register(consoleRoutes)
  return routes
}

t.test('every REST route\'s schema is valid JSON Schema', async t => {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  const routes = await routesWithSchemas(app)
  await t.resolves(app.ready(), 'fastify compiles every route schema with the meta-schema check on')
  t.ok(routes.length >= 10, `${routes.length} routes with schemas: ${routes.join(', ')}`)
})

t.test('the check catches a schema that is not valid JSON Schema', async t => {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  app.post('/broken', { schema: { body: { type: 'object', properties: { n: { type: 'numbr' } } } } }, async () => ({}))
  await t.rejects(app.ready(), /schema is invalid|must be equal to one of the allowed values/)
})
