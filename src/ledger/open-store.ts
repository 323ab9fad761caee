import { LevelStore, type LevelStoreConfig } from './level-store.js'
import { PgStore, type PgStoreConfig } from './pg-store.js'
import type { LedgerStore } from './store.js'

/** Which store to use and where: LevelDB (every node's default) or PostgreSQL (DB_TYPE=psql). */
export type StoreConfig =
  | ({ type: 'level' } & LevelStoreConfig)
  | ({ type: 'psql' } & PgStoreConfig)

/** Builds the store a config names. It is not opened yet: the caller calls open(). */
export function openStore (config: StoreConfig): LedgerStore {
  switch (config.type) {
    case 'level':
      return new LevelStore({ path: config.path, durable: config.durable })
    case 'psql': {
      return new PgStore(config)
    }
  }
}
