#!/usr/bin/env node
// The `ledgermesh` binary: loads the Promise.withResolvers polyfill (libp2p 3 on Node 20),
// then the compiled CLI. `npm install` builds dist/ through the prepare script.
import '../scripts/with-resolvers.mjs'
await import('../dist/node/cli.js')
