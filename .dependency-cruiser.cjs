/**
 * The layering of src/, checked by `npm run lint:deps` (part of `npm test`): a violation fails
 * the run and names the rule. ARCHITECTURE.md explains the layers.
 *
 *   base  <-  net, policies  <-  ledger  <-  protocols  <-  commands  <-  services  <-  node
 *
 * A layer imports only layers to its left (net and policies know nothing of each other).
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'An import circle makes modules impossible to read, test or load on their own.',
      severity: 'error',
      from: {},
      to: { circular: true }
    },
    {
      name: 'no-unresolvable',
      comment: 'Every relative import names a file that exists.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true }
    },
    {
      name: 'base-imports-nothing-of-ours',
      comment: 'src/base is the bottom layer: errors, logging, durations, secrets masking.',
      severity: 'error',
      from: { path: '^src/base/' },
      to: { path: '^src/', pathNot: '^src/base/' }
    },
    {
      name: 'policies-import-only-base',
      comment: 'Policies (their schemas, signatures, authorization) know nothing of the ledger that orders them.',
      severity: 'error',
      from: { path: '^src/policies/' },
      to: { path: '^src/', pathNot: '^src/(base|policies)/' }
    },
    {
      name: 'net-imports-only-base',
      comment: 'The network layer (bounded streams, deadlines, wire framing, the protocol skeleton) knows no ledger.',
      severity: 'error',
      from: { path: '^src/net/' },
      to: { path: '^src/', pathNot: '^src/(base|net)/' }
    },
    {
      name: 'ledger-imports-only-policies-and-base',
      comment: 'The ledger (log, head, state, stores, outbox) is storage and ordering; the network protocols build on it, not the other way.',
      severity: 'error',
      from: { path: '^src/ledger/' },
      to: { path: '^src/', pathNot: '^src/(base|policies|ledger)/' }
    },
    {
      name: 'protocols-import-no-upper-layer',
      comment: 'The wire protocols (insert, sync, lease, join) stand on net and the ledger; they never reach into commands, services or the node.',
      severity: 'error',
      from: { path: '^src/protocols/' },
      to: { path: '^src/(commands|services|node)/' }
    },
    {
      name: 'commands-never-import-services-or-node',
      comment: 'Command handlers talk to the node through the port they own (src/commands/port.ts), never to its services or its wiring.',
      severity: 'error',
      from: { path: '^src/commands/' },
      to: { path: '^src/(services|node)/' }
    },
    {
      name: 'services-never-import-node',
      comment: 'Services receive what they need; only src/node builds and wires them.',
      severity: 'error',
      from: { path: '^src/services/' },
      to: { path: '^src/node/' }
    },
    {
      name: 'nothing-imports-tests-or-benchmarks',
      severity: 'error',
      from: { path: '^(src|scripts|bin)/' },
      to: { path: '^(test|bench)/' }
    }
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^dist/' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.json']
    }
  }
}
