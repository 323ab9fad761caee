import { LedgerMeshError } from '../base/errors.js'

/**
 * AnyLog's data layer (ingestion, SQL databases and tables, partitions, brokers, its
 * operator service) and its host tooling are not part of ledgermesh, which keeps only the
 * metadata ledger. Their commands are answered `not_supported` (HTTP 501 over REST).
 *
 * Inside a script such a line is noted in the error log and passed over: the script goes
 * on as it does in AnyLog once the command has succeeded, so a deployment script reaches
 * its metadata steps (config, cluster and node policies) instead of taking the `on error`
 * path written for a database that failed to start.
 */
export function dataLayerError (command: string, why = 'is AnyLog\'s data layer or host tooling, which ledgermesh does not include (it keeps the metadata ledger)'): LedgerMeshError {
  return new LedgerMeshError('not_supported', `'${command}' ${why}`, { command, data_layer: true })
}

/** The one table ledgermesh keeps, and the database AnyLog's scripts name the ledger's (or DB_NAME): any other is the data layer. */
export const LEDGER_TABLE = 'ledger'
export const LEDGER_DATABASE = 'blockchain'

/** Whether a script passes over this error (see dataLayerError). */
export function isDataLayerError (err: unknown): boolean {
  return err instanceof LedgerMeshError && err.code === 'not_supported' && err.details.data_layer === true
}
