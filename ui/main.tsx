import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { Allocation } from './allocation.js'
import { type History, type LedgerSummary, type Network, type Profiles, type Status, getJson } from './api.js'
import { Charts } from './charts.js'
import { Ledger } from './ledger.js'
import { Editor } from './editor.js'
import { NetworkTable } from './network.js'
import { Database } from './database.js'

/** How often the console reads the node again. */
const REFRESH_MS = 2000

interface Snapshot { status: Status, network: Network, profiles: Profiles | null, ledger: LedgerSummary | null, history: History | null, at: Date }

function App () {
  const [snapshot, setSnapshot] = useState<Snapshot | undefined>()
  const [error, setError] = useState<string | undefined>()
  useEffect(() => {
    let stopped = false
    let timer: number | undefined
    const read = async (): Promise<void> => {
      try {
        const [status, network, profiles, ledger, history] = await Promise.all([
          getJson<Status>('/v1/status'),
          getJson<Network>('/v1/network'),
          getJson<Profiles>('/v1/profiles').catch(() => null),
          getJson<LedgerSummary>('/v1/ledger/summary').catch(() => null),
          getJson<History>('/v1/history').catch(() => null)
        ])
        if (!stopped) { setSnapshot({ status, network, profiles, ledger, history, at: new Date() }); setError(undefined) }
      } catch (err) {
        if (!stopped) setError(err instanceof Error ? err.message : String(err))
      }
      if (!stopped) timer = window.setTimeout(() => { void read() }, REFRESH_MS)
    }
    void read()
    // a blocking read on the ledger (Consul's kind): answered as soon as the head passes the
    // index, so a ledger change (a profile moving, a drain) shows at once, not at the next tick
    const controller = new AbortController()
    void (async () => {
      let index = 0
      while (!stopped) {
        try {
          const response = await fetch(`/v1/policies?type=console-watch&index=${index}&wait=30s`, { signal: controller.signal })
          const next = Number(response.headers.get('x-ledgermesh-index') ?? index)
          if (next > index && index > 0) { window.clearTimeout(timer); await read() }
          index = next
        } catch {
          if (!stopped) await new Promise(resolve => window.setTimeout(resolve, REFRESH_MS))
        }
      }
    })()
    return () => { stopped = true; controller.abort(); window.clearTimeout(timer) }
  }, [])

  if (snapshot === undefined) return <main><p role="status">{error !== undefined ? <span class="error">{error}</span> : 'Loading…'}</p></main>
  const { status, network, profiles, ledger, history } = snapshot
  return (
    <>
      <header>
        <h1>ledgermesh · {status.node}</h1>
        <span class="muted">{status.role}, head {network.head}</span>
        <nav aria-label="Sections"><a href="#network">Network</a><a href="#rates">Rates</a><a href="#allocation">Allocation</a><a href="#ledger">Ledger</a><a href="#write">Insert</a></nav>
        <span class="muted" role="status" aria-live="polite">{error !== undefined ? <span class="error">{error}</span> : `updated ${snapshot.at.toLocaleTimeString()}`}</span>
      </header>
      <main>
        <NetworkTable network={network} />
        {network.database !== undefined ? <Database database={network.database} /> : null}
        <Charts history={history} />
        <Allocation profiles={profiles} />
        <Ledger summary={ledger} />
        <Editor />
      </main>
    </>
  )
}

// the page's "Loading" placeholder goes: render diffs into the container, it does not replace it
const root = document.getElementById('app')!
root.textContent = ''
render(<App />, root)
