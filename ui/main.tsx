import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { Allocation } from './allocation.js'
import { type LedgerSummary, type Network, type Profiles, type Status, getJson } from './api.js'
import { Ledger } from './ledger.js'
import { Editor } from './editor.js'
import { NetworkTable } from './network.js'

/** How often the console reads the node again. */
const REFRESH_MS = 2000

interface Snapshot { status: Status, network: Network, profiles: Profiles | null, ledger: LedgerSummary | null, at: Date }

function App () {
  const [snapshot, setSnapshot] = useState<Snapshot | undefined>()
  const [error, setError] = useState<string | undefined>()
  useEffect(() => {
    let stopped = false
    let timer: number | undefined
    const read = async (): Promise<void> => {
      try {
        const [status, network, profiles, ledger] = await Promise.all([
          getJson<Status>('/v1/status'),
          getJson<Network>('/v1/network'),
          getJson<Profiles>('/v1/profiles').catch(() => null),
          getJson<LedgerSummary>('/v1/ledger/summary').catch(() => null)
        ])
        if (!stopped) { setSnapshot({ status, network, profiles, ledger, at: new Date() }); setError(undefined) }
      } catch (err) {
        if (!stopped) setError(err instanceof Error ? err.message : String(err))
      }
      if (!stopped) timer = window.setTimeout(() => { void read() }, REFRESH_MS)
    }
    void read()
    return () => { stopped = true; window.clearTimeout(timer) }
  }, [])

  if (snapshot === undefined) return <main><p role="status">{error !== undefined ? <span class="error">{error}</span> : 'Loading…'}</p></main>
  const { status, network, profiles, ledger } = snapshot
  return (
    <>
      <header>
        <h1>ledgermesh · {status.node}</h1>
        <span class="muted">{status.role}, head {network.head}</span>
        <nav aria-label="Sections"><a href="#network">Network</a><a href="#allocation">Allocation</a><a href="#ledger">Ledger</a><a href="#write">Insert</a></nav>
        <span class="muted" role="status" aria-live="polite">{error !== undefined ? <span class="error">{error}</span> : `updated ${snapshot.at.toLocaleTimeString()}`}</span>
      </header>
      <main>
        <NetworkTable network={network} />
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
