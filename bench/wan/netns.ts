import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { HUB_IP, NS_PREFIX, SUBNET, type WanTopology } from './topology.js'

/**
 * The WAN harness's network namespaces: a hub and one namespace per host, joined by routed
 * veth pairs (see topology.ts for the address plan). Every command goes through `ip`/`tc` in
 * batch mode where it can, so a 31-host network is a few dozen short processes, not hundreds.
 * Nothing is ever created in the machine's own namespace: veths are made from inside the hub
 * with their peer placed straight into the host's namespace.
 */

const COMMAND_TIMEOUT_MS = 15_000
const KILL_WAIT_MS = 5_000

interface Output { stdout: string, stderr: string }

class CommandError extends Error {
  constructor (message: string, readonly stderr: string) { super(message) }
}

/** execFile with a timeout and optional stdin (for `-batch -`); the error names the command. */
async function run (file: string, args: string[], input?: string, timeoutMs = COMMAND_TIMEOUT_MS): Promise<Output> {
  return await new Promise((resolve, reject) => {
    const child = execFile(file, args, { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err === null) { resolve({ stdout, stderr }); return }
      const what = [file, ...args].join(' ')
      const why = (err as { killed?: boolean }).killed === true ? `timed out after ${timeoutMs} ms` : (stderr.trim() !== '' ? stderr.trim() : err.message)
      reject(new CommandError(`${what}: ${why}`, stderr))
    })
    // a command that exits before reading its input makes the write fail with EPIPE: its exit status tells
    child.stdin?.on('error', () => {})
    child.stdin?.end(input ?? '')
  })
}

/**
 * Runs many `ip` (or `tc`) commands in one process. ip stops at the first failing line and says
 * which ("Command failed -:N"); the error quotes that line, which is more useful than the batch.
 */
async function batch (tool: 'ip' | 'tc', ns: string | undefined, lines: string[], force = false): Promise<void> {
  if (lines.length === 0) return
  const args = [...(ns !== undefined ? ['-n', ns] : []), ...(force ? ['-force'] : []), '-batch', '-']
  try {
    await run(tool, args, lines.join('\n') + '\n')
  } catch (err) {
    if (!(err instanceof CommandError)) throw err
    const lineNo = Number(/Command failed -:(\d+)/.exec(err.stderr)?.[1])
    const detail = err.stderr.replace(/Command failed -:\d+\s*/g, '').trim()
    const where = ns !== undefined ? `${tool} -n ${ns}` : tool
    if (Number.isInteger(lineNo) && lineNo >= 1 && lineNo <= lines.length) {
      throw new Error(`${where} ${lines[lineNo - 1]}: ${detail}`)
    }
    throw new Error(`${where} -batch: ${err.message}`)
  }
}

export async function checkPrerequisites (): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new Error(`the WAN harness needs root (network namespaces, veths, tc); running as uid ${String(process.getuid?.())}`)
  }
  try {
    await run('ip', ['-V'])
  } catch (err) {
    throw new Error(`the WAN harness needs iproute2's \`ip\` on PATH: ${(err as Error).message}`)
  }
}

/** Every network namespace's name (`ip netns list` also prints ids: only the first word counts). */
async function listNamespaces (): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list'])
  return stdout.split('\n').map(line => line.trim().split(/\s+/)[0]).filter(name => name !== '')
}

function runPrefix (runId: string): string {
  return `${NS_PREFIX}${runId}-`
}

async function namespacesOf (runId: string): Promise<string[]> {
  const prefix = runPrefix(runId)
  return (await listNamespaces()).filter(name => name.startsWith(prefix))
}

/** The pids in a namespace; none when it is already gone. */
async function pidsIn (ns: string): Promise<number[]> {
  try {
    const { stdout } = await run('ip', ['netns', 'pids', ns])
    return stdout.split(/\s+/).filter(s => s !== '').map(Number).filter(n => Number.isInteger(n) && n > 0)
  } catch {
    return []
  }
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

export async function createNetwork (topo: WanTopology): Promise<void> {
  const existing = await namespacesOf(topo.runId)
  if (existing.length > 0) {
    // refuse rather than clean up: they may be a live network of this run
    throw new Error(`run ${topo.runId} already has namespaces (${existing.join(', ')}): destroyNetwork('${topo.runId}') first`)
  }
  const hub = topo.hubNs
  const rate = topo.links.rateKbit
  const tbf = `root tbf rate ${rate}kbit burst 32kbit latency 400ms`
  try {
    await batch('ip', undefined, [hub, ...topo.hosts.map(h => h.ns)].map(ns => `netns add ${ns}`))
    // before the veths exist, so they start with rp_filter 0 from `default`
    await run('ip', ['netns', 'exec', hub, 'sysctl', '-qw',
      'net.ipv4.ip_forward=0', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0'])
    const hubLines = ['link set lo up']
    for (const h of topo.hosts) {
      hubLines.push(
        `addr add ${h.publicIp}/32 dev lo`,
        `link add h${h.index} type veth peer name eth0 netns ${h.ns}`,
        `addr add ${HUB_IP}/32 dev h${h.index}`,
        `link set h${h.index} up`,
        `route add ${h.ip}/32 dev h${h.index} src ${HUB_IP}`
      )
    }
    await batch('ip', hub, hubLines)
    // settle every host before failing, so the cleanup never races a batch still running
    const hosts = await Promise.allSettled(topo.hosts.map(async h => {
      await batch('ip', h.ns, [
        'link set lo up',
        `addr add ${h.ip}/32 dev eth0`,
        'link set eth0 up',
        `route add ${HUB_IP}/32 dev eth0`,
        // only the public subnet: another host's own address has no route at all
        `route add ${SUBNET}.2.0/24 via ${HUB_IP} dev eth0 onlink`
      ])
      if (rate > 0) await batch('tc', h.ns, [`qdisc add dev eth0 ${tbf}`])
    }))
    const failed = hosts.find(r => r.status === 'rejected')
    if (failed !== undefined) throw failed.reason
    if (rate > 0) await batch('tc', hub, topo.hosts.map(h => `qdisc add dev h${h.index} ${tbf}`))
  } catch (err) {
    await destroyNetwork(topo.runId).catch(() => {})
    throw new Error(`createNetwork ${topo.runId}: ${(err as Error).message}`)
  }
}

/** Kills what runs in a namespace (a live process keeps it alive after `netns del`), then deletes it. */
async function removeNamespaces (names: string[]): Promise<void> {
  await Promise.all(names.map(async ns => {
    const deadline = Date.now() + KILL_WAIT_MS
    for (;;) {
      const pids = (await pidsIn(ns)).filter(pid => pid !== process.pid)
      if (pids.length === 0 || Date.now() > deadline) break
      for (const pid of pids) {
        try { process.kill(pid, 'SIGKILL') } catch {}
      }
      await sleep(50)
    }
  }))
  // -force: one already gone must not stop the rest
  await batch('ip', undefined, names.map(ns => `netns del ${ns}`), true).catch(() => {})
}

export async function destroyNetwork (runId: string): Promise<void> {
  const names = await namespacesOf(runId).catch(() => [])
  if (names.length > 0) await removeNamespaces(names)
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export async function sweepStale (): Promise<string[]> {
  const stale = new Set<string>()
  for (const name of await listNamespaces()) {
    const m = new RegExp(`^${NS_PREFIX}([pt])(\\d+)-`).exec(name)
    if (m === null) continue
    const pid = Number(m[2])
    if (pid !== process.pid && !isAlive(pid)) stale.add(`${m[1]}${m[2]}`)
  }
  for (const runId of stale) await destroyNetwork(runId)
  return [...stale]
}

export async function leftovers (runId: string): Promise<string[]> {
  const found: string[] = []
  for (const ns of await namespacesOf(runId)) {
    found.push(`namespace ${ns}`)
    for (const pid of await pidsIn(ns)) {
      const comm = await readFile(`/proc/${pid}/comm`, 'utf8').then(s => s.trim(), () => '?')
      found.push(`pid ${pid} (${comm}) in ${ns}`)
    }
  }
  return found
}

let probes = 0

export async function netemAvailable (): Promise<boolean> {
  // under this process's own run prefix, so sweepStale removes it should the process die mid-probe
  const ns = `${runPrefix(`p${process.pid}`)}probe${probes++}`
  try {
    await run('ip', ['netns', 'add', ns])
    await run('tc', ['-n', ns, 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms'])
    return true
  } catch {
    return false
  } finally {
    await run('ip', ['netns', 'del', ns]).catch(() => {})
  }
}
