/**
 * A long-running part of a node (p2p host, REST server, sync, scheduler, ...). Each has a
 * `start()`/`stop()` pair and reports a row of `get processes`.
 */
export type ProcessState = 'Running' | 'Not declared' | 'Stopped' | 'Error'

export interface ProcessStatus {
  status: ProcessState
  details?: string
}

export interface Service {
  /** the row name in `get processes`, e.g. "TCP", "REST", "Blockchain Sync" */
  readonly name: string
  start (): Promise<void>
  stop (): Promise<void>
  status (): ProcessStatus
}
