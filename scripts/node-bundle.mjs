// esbuild settings shared by the node's bundle (build-bin.mjs) and the test bundles
// (build-tests.mjs): ESM for Node 20 and later, with a `require` for the CommonJS packages
// inside that call it for Node's built-ins.
export const NODE_BUNDLE = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  splitting: true,
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: 'warning'
}

/**
 * Loaded from node_modules at run time, never bundled: classic-level (a native addon found
 * beside its own package), pino (its transports run in worker threads it starts from its own
 * files, pino-pretty among them) and pg-native (pg's optional native driver, not installed).
 */
export const RUNTIME_EXTERNALS = ['classic-level', 'pino', 'pino-pretty', 'pg-native']
