import { LedgerMeshError } from '../base/errors.js'

/** One p2p address as LEDGER_CONN and `master=` write it: `ip:port` (a host name is let through as before). */
const HOST_PORT = /^[A-Za-z0-9.-]+:(\d{1,5})$/

/** `ip:port` with a port from 1 to 65535, trimmed; undefined when it is not one. */
export function parseHostPort (text: string): string | undefined {
  const value = text.trim()
  const port = HOST_PORT.exec(value)?.[1]
  if (port === undefined || Number(port) < 1 || Number(port) > 65535) return undefined
  return value
}

/**
 * A comma-separated list of `ip:port` (spaces around the commas allowed), in order, without
 * repeats. A bad element throws LedgerMeshError(`code`) naming that element and its place, so
 * a typo in the third master of a list is not reported as the whole list being wrong.
 */
export function parseHostPortList (text: string, code: 'bad_command' | 'bad_config'): string[] {
  const parts = text.split(',')
  const addresses: string[] = []
  parts.forEach((part, i) => {
    const address = parseHostPort(part)
    if (address === undefined) {
      const shown = part.trim() === '' ? 'empty' : JSON.stringify(part.trim())
      const where = parts.length > 1 ? `element ${i + 1} of ${parts.length} is ${shown},` : `${shown} is`
      throw new LedgerMeshError(code, `${where} not ip:port with a port from 1 to 65535`, { element: part.trim(), index: i })
    }
    if (!addresses.includes(address)) addresses.push(address)
  })
  return addresses
}
