import { useEffect, useState } from 'preact/hooks'
import { restToken, setRestToken, write } from './api.js'

/** How long the editor waits after the last keystroke before it asks the node to check. */
const CHECK_AFTER_MS = 300

/**
 * Insert a policy from a JSON editor: checked by the node as it is typed
 * (POST /v1/policies/check: shape, schema, reserved fields), sent with the REST token when
 * one is set on the node (POST /v1/policies). Refusals are shown as the node words them.
 */
export function Editor () {
  const [text, setText] = useState('{"sensor": {"name": "s-1", "company": "acme"}}')
  const [token, setToken] = useState(restToken())
  const [check, setCheck] = useState<{ ok: boolean, message: string }>({ ok: false, message: '' })
  const [outcome, setOutcome] = useState<{ ok: boolean, message: string } | undefined>()
  useEffect(() => {
    const timer = window.setTimeout(() => {
      let body: string
      try { body = JSON.stringify(JSON.parse(text)) } catch (err) { setCheck({ ok: false, message: `not JSON: ${err instanceof Error ? err.message : String(err)}` }); return }
      write<{ type: string }>('/v1/policies/check', { body })
        .then(r => { setCheck({ ok: true, message: `a valid ${r.type} policy` }) })
        .catch(err => { setCheck({ ok: false, message: err instanceof Error ? err.message : String(err) }) })
    }, CHECK_AFTER_MS)
    return () => { window.clearTimeout(timer) }
  }, [text])
  const insert = async (event: Event): Promise<void> => {
    event.preventDefault()
    try {
      const result = await write<{ id: string, seq?: number }>('/v1/policies', { body: JSON.stringify(JSON.parse(text)) })
      setOutcome({ ok: true, message: `inserted: id ${result.id.slice(0, 12)}…${result.seq !== undefined ? `, seq ${result.seq}` : ''}` })
    } catch (err) {
      setOutcome({ ok: false, message: err instanceof Error ? err.message : String(err) })
    }
  }
  return (
    <section id="write" aria-labelledby="write-title">
      <h2 id="write-title">Insert a policy</h2>
      <form onSubmit={e => { void insert(e) }} aria-label="Insert a policy">
        <label>REST token <input name="token" type="password" autocomplete="off" value={token} onInput={e => { const v = (e.target as HTMLInputElement).value; setToken(v); setRestToken(v) }} /></label>
        <label class="wide">Policy (JSON)<textarea name="policy" rows={5} spellcheck={false} value={text} onInput={e => { setText((e.target as HTMLTextAreaElement).value); setOutcome(undefined) }} /></label>
        <p role="status" data-field="check" class={check.ok ? 'state-live' : 'error'}>{check.message}</p>
        <button type="submit" disabled={!check.ok}>Insert</button>
      </form>
      {outcome !== undefined ? <p role={outcome.ok ? 'status' : 'alert'} data-field="outcome" class={outcome.ok ? 'state-live' : 'error'}>{outcome.message}</p> : null}
    </section>
  )
}
