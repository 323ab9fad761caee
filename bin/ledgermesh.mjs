#!/usr/bin/env node
// The `ledgermesh` binary: loads the Promise.withResolvers polyfill (libp2p 3 on Node 20),
// then the bundled CLI (dist/bin/ledgermesh.js). `npm install` builds dist/ through the prepare
// script.
import '../scripts/with-resolvers.mjs'
await import('../dist/bin/ledgermesh.js')
