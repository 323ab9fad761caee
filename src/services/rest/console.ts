import { existsSync } from 'node:fs'
import { join } from 'node:path'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance, FastifySchema } from 'fastify'
import { PACKAGE_ROOT } from '../../base/package-root.js'

/**
 * The web console at /ui: files built into the package by `npm run build` (ui/ bundled by
 * esbuild into dist/ui; no CDN, nodes are often offline). It reads only the public JSON API.
 */
export const CONSOLE_DIR = join(PACKAGE_ROOT, 'dist', 'ui')

const hidden = { hide: true } as FastifySchema

export async function consoleRoutes (app: FastifyInstance): Promise<void> {
  app.get('/ui', { schema: hidden }, async (_req, reply) => await reply.redirect('/ui/'))
  if (!existsSync(join(CONSOLE_DIR, 'index.html'))) {
    app.get('/ui/*', { schema: hidden }, async (_req, reply) => await reply.code(404).send({ error: 'not_found', message: 'the web console is not built: run `npm run build`' }))
    return
  }
  await app.register(fastifyStatic, { root: CONSOLE_DIR, prefix: '/ui/', decorateReply: false, schemaHide: true })
}
