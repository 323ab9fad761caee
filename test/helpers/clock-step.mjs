// Preloaded into a node process (node --import) whose wall clock a test steps: on SIGUSR2 the
// process's Date.now() jumps one hour ahead, as after an NTP step or `date -s`, and on the next
// SIGUSR2 back again (a step backwards, as when the clock is corrected); its monotonic clock
// (performance.now) runs on undisturbed. Other processes keep the real time.
const STEP_MS = 3_600_000
const realNow = Date.now
let offset = 0
Date.now = () => realNow() + offset
process.on('SIGUSR2', () => {
  offset = offset === 0 ? STEP_MS : 0
  process.stderr.write(`clock-step: the wall clock jumped ${STEP_MS} ms ${offset === 0 ? 'back' : 'ahead'}\n`)
})
