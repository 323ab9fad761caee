import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The package root: scripts/ and configs/ live there. */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const SCRIPTS_DIR = join(PACKAGE_ROOT, 'scripts')
