#!/usr/bin/env node
// The demo profile runner: what a worker runs for a profile (PROFILE_RUNNER_<KIND>). A real
// runner would drive a LinkedIn session or an MTA; this one reports to its slave, like they
// would, and logs a line of "work" now and then.
//
// Environment (set by the worker): PROFILE_ID, PROFILE_NAME, PROFILE_KIND, PROFILE_SETTINGS
// (JSON), SLAVE_URL, WORKER_NAME, HEARTBEAT_PROOF (sent with every heartbeat: the slave takes
// heartbeats only with the worker's proof). Settings it understands:
//   heartbeat_ms   how often to report to the slave (default 1000)
//   work_ms        how often to log a unit of work (default 5000)
//   crash_after_ms exit with code 3 after this long (to show restarts with backoff)
//   run_log        a directory: append "<epoch ms> <state>" to <profile>--<worker>--<pid>.log at
//                  every heartbeat, whether or not the slave answers (the WAN harness's
//                  overlap check reads it: the machine's clock, no network in between)

import { appendFileSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import { join } from 'node:path'

const env = process.env
const settings = (() => { try { return JSON.parse(env.PROFILE_SETTINGS ?? '{}') } catch { return {} } })()
const heartbeatMs = Number(settings.heartbeat_ms ?? 1000)
const workMs = Number(settings.work_ms ?? 5000)
let stopping = false
let tasks = 0

function logRun (state) {
  if (settings.run_log === undefined) return
  try {
    appendFileSync(join(String(settings.run_log), `${env.PROFILE_NAME}--${env.WORKER_NAME}--${process.pid}.log`), `${Date.now()} ${state}\n`)
  } catch (err) {
    console.error(`run log: ${err.message}`)
  }
}

/**
 * POSTs JSON and resolves with the answer's status and text. node:http rather than fetch():
 * a runner reports several times a second, and on Node 20 each fetch() costs about four times
 * the CPU (and its first call loads undici's whole HTTP client).
 */
function postJson (url, value, timeoutMs) {
  const body = JSON.stringify(value)
  const { request } = url.startsWith('https:') ? https : http
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, timeout: timeoutMs }, res => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', chunk => { text += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
    req.on('error', reject)
    req.end(body)
  })
}

async function heartbeat (state) {
  logRun(state)
  try {
    const res = await postJson(`${env.SLAVE_URL}/v1/profiles/heartbeat`,
      { profile_id: env.PROFILE_ID, profile_name: env.PROFILE_NAME, kind: env.PROFILE_KIND, worker: env.WORKER_NAME, pid: process.pid, state, ...(env.HEARTBEAT_PROOF ? { proof: env.HEARTBEAT_PROOF } : {}) }, 2000)
    if (res.status < 200 || res.status > 299) console.error(`heartbeat refused by ${env.SLAVE_URL}: ${res.status} ${res.text}`)
  } catch (err) {
    console.error(`heartbeat to ${env.SLAVE_URL} failed: ${err.message}`)
  }
}

console.log(`${env.PROFILE_KIND} profile ${env.PROFILE_NAME} started (pid ${process.pid}, slave ${env.SLAVE_URL})`)
await heartbeat('running')
const beat = setInterval(() => { if (!stopping) void heartbeat('running') }, heartbeatMs)
const work = setInterval(() => { tasks++; console.log(`${env.PROFILE_NAME}: task ${tasks} done`) }, workMs)
if (settings.crash_after_ms !== undefined) {
  setTimeout(() => { console.error(`${env.PROFILE_NAME}: crashing on purpose (crash_after_ms)`); process.exit(3) }, Number(settings.crash_after_ms))
}

process.on('SIGTERM', () => {
  stopping = true
  logRun('stopped')
  clearInterval(beat)
  clearInterval(work)
  console.log(`${env.PROFILE_NAME}: stopping after ${tasks} tasks`)
  process.exit(0)
})
