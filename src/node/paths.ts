import { join } from 'node:path'
import { PACKAGE_ROOT } from '../base/package-root.js'

/** The package root: scripts/ and configs/ live there. */
export { PACKAGE_ROOT }
export const SCRIPTS_DIR = join(PACKAGE_ROOT, 'scripts')
/** The `ledgermesh` binary as `npm run build` bundles it (bin/ledgermesh.mjs loads it too). */
export const NODE_BINARY = join(PACKAGE_ROOT, 'dist', 'bin', 'ledgermesh.js')
