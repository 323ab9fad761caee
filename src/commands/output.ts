/**
 * What a command returns. `value` is the JSON-able result (REST's /v1 API and assignments
 * use it); `text` is what the REPL prints and what the AnyLog-style REST endpoint sends.
 */
export interface CommandOutput {
  value: unknown
  text: string
  contentType: 'json' | 'text'
}

export function textOutput (text: string, value: unknown = text): CommandOutput {
  return { value, text, contentType: 'text' }
}

/** A JSON answer; its text is serialized when first read (a /v1 route may send only the value). */
export function jsonOutput (value: unknown): CommandOutput {
  let text: string | undefined
  return { value, get text () { return (text ??= JSON.stringify(value)) }, contentType: 'json' }
}

/** A command that succeeded with nothing to say (REST answers 200 with an empty body). */
export const EMPTY_OUTPUT: CommandOutput = { value: null, text: '', contentType: 'text' }
