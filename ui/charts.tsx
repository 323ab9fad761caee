import type { History, HistorySample } from './api.js'

const WIDTH = 240
const HEIGHT = 48

interface Series { label: string, unit: string, points: Array<{ t: number, v: number }> }

/** Per-second rates of a counter between consecutive samples. */
function rate (samples: HistorySample[], pick: (s: HistorySample) => number): Array<{ t: number, v: number }> {
  const points = []
  for (let i = 1; i < samples.length; i++) {
    const seconds = (samples[i].t - samples[i - 1].t) / 1000
    if (seconds > 0) points.push({ t: samples[i].t, v: Math.max(0, (pick(samples[i]) - pick(samples[i - 1])) / seconds) })
  }
  return points
}

function Sparkline ({ series }: { series: Series }) {
  const { points } = series
  const last = points.at(-1)?.v
  const max = Math.max(1, ...points.map(p => p.v))
  const t0 = points[0]?.t ?? 0
  const span = Math.max(1, (points.at(-1)?.t ?? 1) - t0)
  const path = points.map(p => `${((p.t - t0) / span * WIDTH).toFixed(1)},${(HEIGHT - (p.v / max) * (HEIGHT - 4) - 2).toFixed(1)}`).join(' ')
  const now = last === undefined ? 'no data yet' : `${last < 10 ? last.toFixed(1) : Math.round(last)} ${series.unit}`
  return (
    <figure class="chart" data-chart={series.label}>
      <figcaption>{series.label}: <strong>{now}</strong> <span class="muted">(max {max < 10 ? max.toFixed(1) : Math.round(max)})</span></figcaption>
      <svg width={WIDTH} height={HEIGHT} viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={`${series.label} over the last ${Math.round(span / 60000)} minutes, now ${now}`}>
        <polyline points={path} fill="none" stroke="currentColor" stroke-width="1.5" />
      </svg>
    </figure>
  )
}

/** Insert and sync rates and the lag over the last minutes (GET /v1/history). */
export function Charts ({ history }: { history: History | null }) {
  if (history === null) return null
  const { samples } = history
  const series: Series[] = [
    { label: 'Inserts', unit: '/s', points: rate(samples, s => s.head) },
    { label: 'Sync entries', unit: '/s', points: rate(samples, s => s.entries_in + s.entries_out) },
    { label: 'Lag', unit: 'entries', points: samples.map(s => ({ t: s.t, v: s.lag })) }
  ]
  return (
    <section id="rates" aria-labelledby="rates-title">
      <h2 id="rates-title">Rates and lag <span class="muted">(every {history.every_ms / 1000} s, last {Math.round(samples.length * history.every_ms / 60000)} min)</span></h2>
      <div class="charts">{series.map(s => <Sparkline key={s.label} series={s} />)}</div>
    </section>
  )
}
