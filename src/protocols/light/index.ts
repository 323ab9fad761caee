/**
 * `/ledgermesh/light/1.0.0`: a light worker fetches the policies it needs with inclusion proofs.
 *
 * ```ts
 * const light = new LightProtocol({ libp2p, log, ledger })
 * await light.start()                                   // serves when it has a ledger
 * const answer = await light.fetch(slaveAddr, { worker: 'w1', ids: [...] })
 * const verified = verifyLightAnswer(answer, { rootKey, held })   // src/ledger/light.ts
 * ```
 */
export { LightProtocol, type LightComponents, type LightInit, type LightQuery } from './light.js'
export { LIGHT_PROTOCOL, WIRE_VERSION, TIMEOUT_MS, MAX_IDS } from './constants.js'
export { LIGHT_PROTO, encodeLightRequest, decodeLightRequest, encodeLightResponse, decodeLightResponse, type LightRequest, type LightResponse } from './messages.js'
