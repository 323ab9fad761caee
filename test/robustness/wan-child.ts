/**
 * One `--store wan` seed, inside the hub namespace (wan-run.ts starts it there once the
 * namespaces exist): runs the seed and writes its report to the file named. Arguments: the
 * topology (JSON), the seed, the minutes, the report file.
 */
import { writeFileSync } from 'node:fs'
import type { WanTopology } from '../../bench/wan/topology.js'
import { runSeed } from './run.js'

const [topoText, seedText, minutesText, reportFile] = process.argv.slice(2)
const report = await runSeed(Number(seedText), Number(minutesText), line => { console.log(line) }, 'wan', JSON.parse(topoText) as WanTopology)
writeFileSync(reportFile, JSON.stringify(report) + '\n')
process.exit(0)
