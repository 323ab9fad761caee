// Put in NODE_OPTIONS by scripts/test.mjs, so Node loads it before tap's own preloads. In a test
// process (tap sets TAP_CHILD_ID) it keeps tap's process-info hook from registering: that hook
// records every loaded module and its source-map line lengths (for coverage, which is off here,
// and for `tap --changed`) through an extra module loader, and cost about 1 s of CPU per test
// file, a third of a short test's. It also turns on V8's compile cache (Node 22 and later), so
// the test bundles' shared chunks are parsed once, not in every test process. Elsewhere (the tap
// runner itself) it does nothing.
import module from 'node:module'

if (process.env.TAP_CHILD_ID !== undefined) {
  module.enableCompileCache?.()
  // @tapjs/processinfo's own switch: its getProcessInfo() then registers nothing in this pid
  process.env.__TAPJS_PROCESSINFO_TESTING_NO_REGISTER__ = String(process.pid)
  const fromProcessInfo = (what) => String(what).includes('@tapjs/processinfo') || (new Error().stack ?? '').includes('@tapjs/processinfo')
  const register = module.register
  if (register !== undefined) module.register = function (specifier, ...rest) { if (!fromProcessInfo(specifier)) register.call(this, specifier, ...rest) }
  const registerHooks = module.registerHooks
  if (registerHooks !== undefined) module.registerHooks = function (hooks) { return fromProcessInfo('') ? { deregister () {} } : registerHooks.call(this, hooks) }
}
