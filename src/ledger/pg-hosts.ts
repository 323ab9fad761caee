import { LedgerMeshError } from '../base/errors.js'

/**
 * PostgreSQL servers as libpq names several of them, for a store on a highly available
 * cluster (a primary and its standbys): DB_IP is a comma list of hosts, each optionally with
 * its own `:port` (the URI form, `host1:5432,host2:5433`), and DB_PORT is one port for every
 * host or one port per host (libpq's `host=h1,h2 port=p1,p2`). Hosts are tried in the order
 * written, as libpq's `load_balance_hosts=disable` does. A host that begins with `/` is a
 * Unix-domain socket's directory, as in libpq.
 */

export interface PgHost {
  host: string
  port: number
}

/** An IPv6 address without brackets: two colons at least, so never `host:port`. */
const BARE_IPV6 = /^[0-9A-Fa-f]*:[0-9A-Fa-f]*:[0-9A-Fa-f:.]*$/
/** `[v6]:port`, `name:port` or a bare host. */
const HOST_WITH_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+))(?::(\d{1,5}))?$/

function checkedPort (text: string, what: string): number {
  const port = Number(text)
  if (!/^\d{1,5}$/.test(text) || port < 1 || port > 65535) throw new LedgerMeshError('bad_config', `${what} is ${JSON.stringify(text)}, not a port from 1 to 65535`, { field: 'port' })
  return port
}

/**
 * The hosts of `hosts` (DB_IP or `connect dbms ... ip=`), with `ports` (DB_PORT or `port=`)
 * for those that name none. A bad element throws `bad_config` naming it and its place, with
 * `details.field` saying whether a host or a port was wrong.
 */
export function parsePgHosts (hosts: string, ports: string | number): PgHost[] {
  const hostParts = hosts.split(',').map(part => part.trim())
  const portParts = String(ports).split(',').map(part => part.trim())
  if (portParts.length !== 1 && portParts.length !== hostParts.length) {
    throw new LedgerMeshError('bad_config', `${portParts.length} ports for ${hostParts.length} hosts: give one port for every host, or one per host in the same order (as libpq does)`, { field: 'port' })
  }
  const place = (i: number, list: string[]): string => list.length > 1 ? ` (element ${i + 1} of ${list.length})` : ''
  const defaults = portParts.map((text, i) => checkedPort(text, `the port${place(i, portParts)}`))
  const parsed = hostParts.map((part, i): PgHost => {
    // a Unix-domain socket's directory, as libpq takes it (its port names the socket file)
    if (part.startsWith('/')) return { host: part, port: defaults[defaults.length === 1 ? 0 : i] }
    // a bare IPv6 address (libpq's host= form): its port comes from the ports
    if (BARE_IPV6.test(part)) return { host: part, port: defaults[defaults.length === 1 ? 0 : i] }
    const match = HOST_WITH_PORT.exec(part)
    if (match === null) throw new LedgerMeshError('bad_config', `the database host${place(i, hostParts)} is ${part === '' ? 'empty' : JSON.stringify(part)}: write host or host:port, hosts separated by commas`, { field: 'host' })
    const host = match[1] ?? match[2]
    const port = match[3] === undefined ? defaults[defaults.length === 1 ? 0 : i] : checkedPort(match[3], `the port of ${JSON.stringify(part)}`)
    return { host, port }
  })
  const seen = new Set<string>()
  for (const host of parsed) {
    const key = pgHostText(host)
    if (seen.has(key)) throw new LedgerMeshError('bad_config', `the database host ${key} is listed twice`, { field: 'host' })
    seen.add(key)
  }
  return parsed
}

/** `host:port`, with brackets around an IPv6 address. */
export function pgHostText ({ host, port }: PgHost): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`
}
