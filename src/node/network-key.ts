import { createHash } from 'node:crypto'
import { readFileSync, statSync, type Stats } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { LedgerMeshError, errorMessage } from '../base/errors.js'
import { decodeUtf8 } from '../base/utf8.js'
import { SWARM_KEY_HEADER } from '../net/private-network.js'
import { ConfigError } from './config-error.js'

/** A private network's pre-shared key (NETWORK_KEY). */
export interface NetworkKey {
  /** the 32 bytes */
  key: Uint8Array
  /** the key file it was read from (resolved), when NETWORK_KEY named one */
  file?: string
  /** a short fingerprint that tells keys apart without revealing them (networkKeyId) */
  id: string
}

export const NETWORK_KEY_EXPECTED = '64 hex characters (a 32-byte key, e.g. from `ledgermesh keygen network`) or the path of a key file holding them'

const HEX_KEY = /^[0-9a-fA-F]{64}$/
/** A key file is a few lines; anything larger is not one (and is not read into memory whole). */
const MAX_KEY_FILE_BYTES = 4096

/** A fingerprint of a network key: the first 8 bytes of its SHA-256, in hex. */
export function networkKeyId (key: Uint8Array): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16)
}

function networkKeyOf (hex: string, file?: string): NetworkKey {
  const key = Uint8Array.from(Buffer.from(hex, 'hex'))
  return { key, ...(file !== undefined ? { file } : {}), id: networkKeyId(key) }
}

/**
 * NETWORK_KEY: 64 hex characters, or the path of a file holding them or a swarm key (a
 * relative path is relative to the env file's directory). No error shows the key or a part of
 * it: a key's errors give its length, a file's errors its path.
 */
export function parseNetworkKey (text: string, source: string): NetworkKey {
  const value = text.trim()
  if (HEX_KEY.test(value)) return networkKeyOf(value)
  const path = isAbsolute(value) ? value : resolve(dirname(resolve(source)), value)
  const looksLikePath = /[/\\]/.test(value) || value.startsWith('.') || /\.[A-Za-z0-9]{1,10}$/.test(value)
  let stat: Stats | undefined
  try {
    stat = statSync(path)
  } catch (err) {
    if (looksLikePath) {
      throw new ConfigError('NETWORK_KEY', text, `${NETWORK_KEY_EXPECTED}: cannot read the key file ${path} (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`, source, `file ${JSON.stringify(value)}`)
    }
  }
  if (stat === undefined) {
    const found = /^[0-9a-fA-F]+$/.test(value)
      ? `found ${value.length} hex characters, not 64`
      : 'found characters that are not hex, and no key file of that name'
    throw new ConfigError('NETWORK_KEY', text, `${NETWORK_KEY_EXPECTED} (${found})`, source)
  }
  const shown = `file ${JSON.stringify(value)}`
  const fileError = (why: string): ConfigError => new ConfigError('NETWORK_KEY', text, `${NETWORK_KEY_EXPECTED}: the key file ${path} ${why}`, source, shown)
  if (!stat.isFile()) throw fileError('is not a regular file')
  if (stat.size > MAX_KEY_FILE_BYTES) throw fileError(`has ${stat.size} bytes; a key file holds 64 hex characters or a swarm key`)
  let content: string
  try {
    content = decodeUtf8(readFileSync(path), `the key file ${path}`, 'bad_config')
  } catch (err) {
    throw fileError(err instanceof LedgerMeshError ? 'is not text (not valid UTF-8)' : `cannot be read (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})`)
  }
  const lines = content.split(/\r?\n/).map(line => line.trim()).filter(line => line !== '')
  if (lines.length === 1 && HEX_KEY.test(lines[0])) return networkKeyOf(lines[0], path)
  if (lines[0] !== SWARM_KEY_HEADER) {
    throw fileError(lines.length === 1 && /^[0-9a-fA-F]+$/.test(lines[0])
      ? `holds ${lines[0].length} hex characters, not 64`
      : `holds neither 64 hex characters nor a swarm key (its first line is not ${SWARM_KEY_HEADER})`)
  }
  if (lines[1] !== '/base16/') throw fileError('holds a swarm key whose second line is not /base16/ (the only encoding supported)')
  if (lines.length !== 3 || !HEX_KEY.test(lines[2])) {
    throw fileError(`holds a swarm key whose third line is not the key in 64 hex characters${lines.length > 3 ? ` (or has ${lines.length} lines, not 3)` : ''}`)
  }
  return networkKeyOf(lines[2], path)
}
