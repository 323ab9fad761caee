/**
 * AnyLog's bind settings (REST_BIND, TCP_BIND, BROKER_BIND, and `bind=` of `run tcp server` /
 * `run rest server`): `true` listens only on the node's own address, `false` on every
 * interface. ledgermesh also takes an IPv4 address: listen on exactly that one.
 */
export type Bind = boolean | string

/** The address that listens on every interface. */
export const ALL_INTERFACES = '0.0.0.0'

/** What a bind setting may be, for error messages. */
export const BIND_EXPECTED = 'true (listen on the node\'s own IP only), false (listen on all interfaces) or an IPv4 address'

export function isIpv4 (text: string): boolean {
  return /^(\d{1,3})(\.\d{1,3}){3}$/.test(text) && text.split('.').every(octet => Number(octet) <= 255)
}

/**
 * `true`/`false` in any case (AnyLog's scripts compare true, True and TRUE), or an IPv4
 * address; undefined for anything else.
 */
export function parseBind (text: string): Bind | undefined {
  const value = text.trim()
  const lower = value.toLowerCase()
  if (lower === 'true' || lower === 'false') return lower === 'true'
  return isIpv4(value) ? value : undefined
}

/** The address to listen on: `ownIp` for true, every interface for false, else the address given. */
export function listenAddress (bind: Bind, ownIp: string): string {
  if (bind === true) return ownIp
  if (bind === false) return ALL_INTERFACES
  return bind
}
