/**
 * The link emulator in its own process (started in the hub namespace), so the harness's own
 * work never delays the traffic it relays. Commands (JSON lines, see bench/lib/child.ts):
 *   hosts {hosts}                 the regions of hosts that only dial out
 *   listen {host, ports}          forward host.publicIp:port to host.ip:port for each port
 *   partition {regions, mode}     cut those regions off ('drop' holds, 'reset' resets)
 *   heal                          end the partition
 *   stall {fraction}              the fraction of chunks stalled from now on
 *   cut {a, b}                    reset every connection between regions a and b
 *   stats                         EmulatorStats
 */
import { childArgs, serveParent } from '../lib/child.js'
import { type EmulatedHost, LinkEmulator, type PartitionMode } from './link-emulator.js'
import type { LinkSettings } from './topology.js'

const { links, regions } = childArgs<{ links: LinkSettings, regions: number }>()
const emulator = new LinkEmulator(links, regions)

serveParent({ pid: process.pid }, {
  hosts: ({ hosts }) => { emulator.addHosts(hosts as EmulatedHost[]) },
  listen: async ({ host, ports }) => {
    for (const port of ports as number[]) await emulator.listen(host as EmulatedHost, port)
  },
  partition: ({ regions, mode }) => { emulator.partition(regions as number[], (mode ?? 'drop') as PartitionMode) },
  heal: () => { emulator.heal() },
  stall: ({ fraction }) => { emulator.stallFraction = Number(fraction) },
  cut: ({ a, b }) => ({ reset: emulator.cut(Number(a), Number(b)) }),
  stats: () => ({ ...emulator.stats() })
}, async () => { await emulator.stop() })
