import { z } from 'zod'
import { LedgerMeshError } from '../base/errors.js'
import { isOwnSignature, verifySignature } from './keys.js'
import { MAX_POLICY_BYTES, type Policy, policyType } from './policy.js'
import { contentId, signingPayload } from './prepare.js'
import { SCHEMAS } from './schemas.js'

const MAX_DEPTH = 32
const TYPE_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/

function bad (message: string): LedgerMeshError {
  return new LedgerMeshError('bad_policy', message)
}

function kindOf (value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value
}

/** Parses policy JSON text and checks its shape; every failure names the problem. */
export function parsePolicyJson (text: string): Policy {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw bad(`policy is not valid JSON: ${(err as Error).message}`)
  }
  return checkPolicyShape(value)
}

/** Checks that a value is JSON with AnyLog's policy shape: one root key whose value is an object. */
export function checkPolicyShape (value: unknown): Policy {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad(`a policy must be a JSON object with one root key (its type), found ${kindOf(value)}`)
  }
  const keys = Object.keys(value)
  if (keys.length !== 1) {
    throw bad(`a policy has exactly one root key (its type), found ${keys.length}${keys.length > 0 ? ': ' + keys.slice(0, 5).join(', ') : ''}`)
  }
  const type = keys[0]
  if (!TYPE_NAME.test(type)) {
    throw bad(`policy type ${JSON.stringify(type.slice(0, 70))} must start with a letter or _ and use letters, digits, _ and - (at most 64)`)
  }
  const body = (value as Record<string, unknown>)[type]
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw bad(`the body of a '${type}' policy must be a JSON object, found ${kindOf(body)}`)
  }
  checkJsonValue(body, type, 1)
  // The canonical form (RFC 8785) writes strings and numbers as JSON.stringify does and only
  // orders the keys, so for the JSON values checkJsonValue lets through its size is exactly
  // JSON.stringify's: measured without building it (it is built, once, where it is signed).
  const bytes = Buffer.byteLength(JSON.stringify(value))
  if (bytes > MAX_POLICY_BYTES) {
    throw bad(`'${type}' policy is ${bytes} bytes; the limit is ${MAX_POLICY_BYTES} bytes (64 KiB less 128)`)
  }
  return value as Policy
}

/** Only JSON values, at most MAX_DEPTH deep. */
function checkJsonValue (value: unknown, path: string, depth: number): void {
  if (depth > MAX_DEPTH) throw bad(`policy nests deeper than ${MAX_DEPTH} levels at ${path}`)
  switch (typeof value) {
    case 'boolean': return
    case 'string':
      checkNoNul(value, path)
      return
    case 'number':
      if (!Number.isFinite(value)) throw bad(`${path} is not a finite number`)
      // Past 2^53 JSON numbers round silently (123456789012345678901 reads back as
      // 123456789012345680000): refuse rather than store a value the author did not write.
      if (Math.abs(value) > Number.MAX_SAFE_INTEGER) {
        throw bad(`${path} is ${value}, beyond ±2^53-1 (${Number.MAX_SAFE_INTEGER}) where JSON numbers lose precision: send it as a string`)
      }
      return
    case 'object':
      if (value === null) return
      if (Array.isArray(value)) {
        value.forEach((item, i) => { checkJsonValue(item, `${path}[${i}]`, depth + 1) })
        return
      }
      for (const [key, item] of Object.entries(value)) {
        checkNoNul(key, `${path} (a field name)`)
        checkJsonValue(item, `${path}.${key}`, depth + 1)
      }
      return
    default:
      throw bad(`${path} is ${typeof value}, which is not a JSON value`)
  }
}

/**
 * U+0000 is valid JSON but PostgreSQL's jsonb cannot hold it: the `policy` column that AnyLog's
 * tools query would be NULL for that row. Refused for every store, so they stay alike.
 */
function checkNoNul (text: string, path: string): void {
  if (text.includes('\u0000')) throw bad(`${path} contains the NUL character (\\u0000), which the PostgreSQL ledger's jsonb column cannot hold`)
}

const RESERVED_SCHEMA = z.object({
  id: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters (a sha256)'),
  date: z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/, 'must be a UTC date with microseconds, e.g. 2026-11-25T01:12:37.799066Z'),
  ledger: z.enum(['global', 'local']).optional(),
  public_key: z.string().regex(/^[0-9a-f]{64}$/, 'must be a 64-hex Ed25519 public key'),
  signature: z.string().regex(/^[0-9a-f]{128}$/, 'must be a 128-hex Ed25519 signature')
})
/** the same before signing: each reserved field optional (built once: zod schemas are costly to build) */
const RESERVED_SCHEMA_UNSIGNED = RESERVED_SCHEMA.partial()

/** One line from zod's issues: the field path and what was expected. */
function describeIssues (type: string, error: z.ZodError, value: Record<string, unknown>): string {
  return error.issues.slice(0, 3).map(issue => {
    const path = issue.path.join('.')
    const found = issue.path.length > 0 ? issue.path.reduce<unknown>((v, k) => (v as Record<PropertyKey, unknown> | undefined)?.[k as PropertyKey], value) : undefined
    // a profile's settings may hold secrets (docs/workers-and-allocation.md, "Sealed settings"): name their kind only
    const shown = found === undefined ? 'missing' : issue.path[0] === 'settings' ? kindOf(found) : JSON.stringify(found)?.slice(0, 80)
    return path === ''
      ? `${type} policy: ${issue.message}`
      : `${type} policy: field '${path}' ${issue.message.toLowerCase().startsWith('must') ? issue.message : `is invalid (${issue.message})`}, found ${shown}`
  }).join('; ')
}

/**
 * Shape, size, the type's schema and the reserved fields. With requireSigned (the default)
 * id, date, public_key and signature must all be present.
 */
export function validatePolicy (policy: Policy, opts: { requireSigned?: boolean } = {}): void {
  checkPolicyShape(policy)
  const type = policyType(policy)
  const body = policy[type]
  const schema = SCHEMAS[type]
  if (schema !== undefined) {
    const result = schema.safeParse(body)
    if (!result.success) throw bad(describeIssues(type, result.error, body))
  }
  const reserved = opts.requireSigned === false ? RESERVED_SCHEMA_UNSIGNED : RESERVED_SCHEMA
  const result = reserved.safeParse(body)
  if (!result.success) throw bad(describeIssues(type, result.error, body))
}

/** The id must be the content's id and the signature the author's. */
export function verifyPolicy (policy: Policy): void {
  const type = policyType(policy)
  const body = policy[type]
  const { public_key: key, signature } = body
  const payload = signingPayload(policy)
  // A policy this node prepared and signed itself, unchanged: its id was computed here from
  // the content the signature covers, so neither needs checking again.
  if (typeof key === 'string' && typeof signature === 'string' && isOwnSignature(key, payload, signature)) return
  const expected = contentId(policy)
  if (body.id !== expected) {
    throw new LedgerMeshError('bad_signature', `${type} policy id ${String(body.id).slice(0, 16)}… does not match its content (expected ${expected.slice(0, 16)}…)`, { id: body.id })
  }
  if (typeof key !== 'string' || typeof signature !== 'string' || !verifySignature(key, payload, signature)) {
    throw new LedgerMeshError('bad_signature', `${type} policy ${expected.slice(0, 16)}… has a signature that does not verify with its public_key`, { id: body.id })
  }
}

/**
 * The indices of the policies that fail verifyPolicy, in order: every one with `all`, else only
 * the first (a batch that fails is rejected whole, so the rest need not be checked).
 */
export function invalidPolicies (policies: readonly Policy[], all: boolean): number[] {
  const invalid: number[] = []
  for (let i = 0; i < policies.length; i++) {
    try { verifyPolicy(policies[i]) } catch { invalid.push(i); if (!all) break }
  }
  return invalid
}
