// Node 20 lacks Promise.withResolvers (added in Node 22); libp2p 3.x uses it.
// Loaded with `node --import` before anything else (see package.json and bin/ledgermesh.mjs).
if (typeof Promise.withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value: function withResolvers () {
      let resolve, reject
      const promise = new this((res, rej) => { resolve = res; reject = rej })
      return { promise, resolve, reject }
    }
  })
}
