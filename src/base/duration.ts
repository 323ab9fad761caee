/**
 * A length of time as the env files and the command language write it ("30 seconds",
 * "500 ms", "1 minute", "30" meaning seconds): sync intervals, lease TTLs, grace periods.
 */
export interface Duration {
  ms: number
  /** as written, for `get processes` ("30 second") */
  text: string
}

const INTERVAL_UNITS: Record<string, number> = {
  ms: 1, millisecond: 1, milliseconds: 1,
  s: 1000, sec: 1000, second: 1000, seconds: 1000,
  m: 60_000, min: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hour: 3_600_000, hours: 3_600_000
}

/** "30 second", "30 seconds", "500 ms", "1 minute", "30" (seconds). */
export function parseDuration (text: string): Duration | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(text)
  if (match === null) return undefined
  const unit = match[2] === '' ? 'second' : match[2].toLowerCase()
  const factor = INTERVAL_UNITS[unit]
  if (factor === undefined) return undefined
  const ms = Math.round(Number(match[1]) * factor)
  if (ms < 50 || ms > 86_400_000) return undefined
  return { ms, text: text.trim() }
}

/** "30 seconds", "500 ms", as `get processes` shows an interval. */
export function describeDuration (duration: Duration): string {
  if (duration.ms % 1000 !== 0) return `${duration.ms} ms`
  const seconds = duration.ms / 1000
  return `${seconds} second${seconds === 1 ? '' : 's'}`
}
