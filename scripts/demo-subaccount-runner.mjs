#!/usr/bin/env node
// The demo sub-account process: what a slave runs per sub-account and process kind
// (SUBACCOUNT_RUNNER_<KIND>), standing in for MassProspecting's ingest, import, plan, rule and
// timeline. It records its own run, so a test (or a person) can see where and when each ran:
// one JSON line per heartbeat appended to the file named by its first argument (or
// SUBACCOUNT_RUN_LOG), with SUBACCOUNT_NAME, PROCESS_KIND, SLAVE_NAME, pid and a timestamp.
//
// Environment (set by the slave): SUBACCOUNT_NAME, SUBACCOUNT_ID, SUBACCOUNT_SETTINGS (JSON),
// PROCESS_KIND, SLAVE_NAME. Settings it understands:
//   heartbeat_ms   how often to record a heartbeat (default 1000)
//   crash_after_ms exit with code 3 after this long (to show restarts with backoff)
import { appendFileSync } from 'node:fs'

const env = process.env
const file = process.argv[2] ?? env.SUBACCOUNT_RUN_LOG
const settings = (() => { try { return JSON.parse(env.SUBACCOUNT_SETTINGS ?? '{}') } catch { return {} } })()
const heartbeatMs = Number(settings.heartbeat_ms ?? 1000)

function record (event) {
  const line = { event, subaccount: env.SUBACCOUNT_NAME, subaccount_id: env.SUBACCOUNT_ID, kind: env.PROCESS_KIND, slave: env.SLAVE_NAME, pid: process.pid, t: Date.now() }
  // one short line per write, appended (O_APPEND): lines of concurrent processes never interleave
  if (file !== undefined) appendFileSync(file, JSON.stringify(line) + '\n')
}

console.log(`${env.PROCESS_KIND} of sub-account ${env.SUBACCOUNT_NAME} started on ${env.SLAVE_NAME} (pid ${process.pid}, settings ${JSON.stringify(settings)})`)
record('start')
const beat = setInterval(() => { record('beat') }, heartbeatMs)
if (settings.crash_after_ms !== undefined) {
  setTimeout(() => { console.error(`${env.SUBACCOUNT_NAME} ${env.PROCESS_KIND}: crashing on purpose (crash_after_ms)`); process.exit(3) }, Number(settings.crash_after_ms))
}
process.on('SIGTERM', () => {
  clearInterval(beat)
  record('stop')
  process.exit(0)
})
