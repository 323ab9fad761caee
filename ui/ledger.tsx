import { useState } from 'preact/hooks'
import { deletePolicy, search as searchPolicies, seqOf, type LedgerSummary } from './api.js'

type Policy = Record<string, Record<string, unknown>>

const short = (hex: unknown): string => typeof hex === 'string' ? `${hex.slice(0, 12)}…` : ''

/**
 * The ledger: its signed head, policies by type, and a search that takes the command language's
 * `where` conditions (GET /v1/policies/search runs `blockchain get <type> where <conditions>`).
 */
export function Ledger ({ summary }: { summary: LedgerSummary | null }) {
  const [type, setType] = useState('*')
  const [where, setWhere] = useState('')
  const [found, setFound] = useState<Policy[] | undefined>()
  const [error, setError] = useState<string | undefined>()
  if (summary === null) return null
  const remove = async (id: string, label: string): Promise<void> => {
    if (!window.confirm(`Delete ${label} from the ledger?`)) return
    try {
      await deletePolicy(id)
      setFound(found?.filter(p => Object.values(p)[0].id !== id))
      setError(undefined)
    } catch (err) {
      setError(`delete ${label}: ${err instanceof Error ? err.message : String(err)}`)
    }
  }
  const search = async (event: Event): Promise<void> => {
    event.preventDefault()
    try {
      setFound(await searchPolicies<Policy[]>(type, where))
      setError(undefined)
    } catch (err) {
      setFound(undefined)
      setError(err instanceof Error ? err.message : String(err))
    }
  }
  const types = Object.entries(summary.types)
  return (
    <section id="ledger" aria-labelledby="ledger-title">
      <h2 id="ledger-title">Ledger ({summary.policies} policies)</h2>
      <p class="muted">
        Head {summary.head.seq} ({short(summary.head.hash)}){summary.signed !== null ? `, signed by the master at ${summary.signed.seq} (key ${short(summary.signed.publicKey)}, ${summary.signed.time})` : ', no signed head yet'}
      </p>
      <p>{types.map(([t, n]) => <span key={t} class="type-count">{t} <strong>{n}</strong> </span>)}</p>
      <form onSubmit={e => { void search(e) }} aria-label="Search the ledger">
        <label>Type <select value={type} onChange={e => setType((e.target as HTMLSelectElement).value)}>
          <option value="*">any</option>
          {types.map(([t]) => <option key={t} value={t}>{t}</option>)}
        </select></label>{' '}
        <label>where <input name="where" size={32} placeholder="name = acme-linkedin-1 and kind = linkedin" value={where} onInput={e => setWhere((e.target as HTMLInputElement).value)} /></label>{' '}
        <button type="submit">Search</button>
      </form>
      {error !== undefined ? <p class="error" role="alert">{error}</p> : null}
      {found !== undefined
        ? (
          <div class="table" role="region" aria-label="Search results">
            <p class="muted" data-field="found">{found.length} found</p>
            <table>
              <thead><tr><th scope="col">Type</th><th scope="col">Name</th><th scope="col">Id</th><th scope="col">Author key</th><th scope="col">Ledger</th><th scope="col">Policy</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
              <tbody>{found.map(policy => {
                const [kind, body] = Object.entries(policy)[0]
                return (
                  <tr key={String(body.id)} data-policy={String(body.name ?? body.id)}>
                    <td>{kind}</td><th scope="row">{String(body.name ?? '')}</th><td>{short(body.id)}</td><td>{short(body.public_key)}</td>
                    <td title="global: ordered by the master and verified (chain, head signature, author signature); local: waiting in this node's outbox">{String(body.ledger ?? '')}</td>
                    <td><PolicyDetails id={String(body.id)} policy={policy} /></td>
                    <td><button type="button" data-action="delete" onClick={() => { void remove(String(body.id), String(body.name ?? body.id)) }}>Delete<span class="sr-only"> {String(body.name ?? body.id)}</span></button></td>
                  </tr>
                )
              })}</tbody>
            </table>
          </div>)
        : null}
    </section>
  )
}

/** A policy's JSON, and its seq on the ledger, read when opened. */
function PolicyDetails ({ id, policy }: { id: string, policy: Policy }) {
  const [seq, setSeq] = useState<string | undefined>()
  const open = (event: Event): void => {
    if (!(event.target as HTMLDetailsElement).open || seq !== undefined) return
    seqOf(id).then(n => { setSeq(n === undefined ? 'not ordered yet (in an outbox)' : `seq ${n}`) }).catch(err => { setSeq(err instanceof Error ? err.message : String(err)) })
  }
  return (
    <details onToggle={open}>
      <summary>JSON</summary>
      <p class="muted" data-field="seq">{seq ?? ''}</p>
      <pre>{JSON.stringify(policy, null, 2)}</pre>
    </details>
  )
}
