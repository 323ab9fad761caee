import { LevelStore, type LevelStoreConfig } from './level-store.js'
import type { PgStoreConfig } from './pg-store.js'
import type { LedgerStore } from './store.js'

/** Which store to use and where: LevelDB (every node's default) or PostgreSQL (DB_TYPE=psql). */
export type StoreConfig =
  | ({ type: 'level' } & LevelStoreConfig)
  | ({ type: 'psql' } & PgStoreConfig)

/**
 * Builds the store a config names. It is not opened yet: the caller calls open(). The
 * PostgreSQL store (and pg) is loaded only for a psql config: most nodes keep a LevelDB
 * replica, and loading pg costs every one of them about 0.1 s of CPU at start-up (its
 * run-time check for Cloudflare makes Node load its fetch implementation).
 */
export async function openStore (config: StoreConfig): Promise<LedgerStore> {
  switch (config.type) {
    case 'level':
      return new LevelStore({ path: config.path, durable: config.durable })
    case 'psql': {
      const { PgStore } = await import('./pg-store.js')
      return new PgStore(config)
    }
  }
}
