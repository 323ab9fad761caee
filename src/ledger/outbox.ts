import { mkdir } from 'node:fs/promises'
import { Level } from 'level'
import { LedgerMeshError, errorMessage } from '../base/errors.js'
import { policyId } from '../policies/policy.js'
import type { LedgerOp } from './entry.js'

/**
 * Inserts made with `local=true` while the master was unreachable. Each waits here, on disk
 * (it survives restarts), until the master has ordered it; re-submitting is idempotent
 * because the master rejects a second copy of the same id.
 *
 * Keys are `<arrival time, 16 digits>!<policy id>`, so pending inserts go out in the order
 * they were made.
 */
export class Outbox {
  private db?: Level<string, string>
  private counter = 0

  constructor (readonly path: string) {}

  async open (): Promise<void> {
    if (this.db !== undefined) return
    const db = new Level<string, string>(this.path, { valueEncoding: 'utf8' })
    try {
      await mkdir(this.path, { recursive: true })
      await db.open()
    } catch (err) {
      await db.close().catch(() => {})
      throw new LedgerMeshError('store_unavailable', `cannot open the outbox at ${this.path}: ${errorMessage(err)}`)
    }
    this.db = db
  }

  async close (): Promise<void> {
    const db = this.db
    this.db = undefined
    await db?.close()
  }

  private get store (): Level<string, string> {
    if (this.db === undefined) throw new LedgerMeshError('store_unavailable', `the outbox at ${this.path} is not open`)
    return this.db
  }

  async add (op: LedgerOp): Promise<void> {
    const key = `${String(Date.now() * 1000 + (this.counter++ % 1000)).padStart(16, '0')}!${policyId(op.policy)}`
    await this.store.put(key, JSON.stringify(op), { sync: true })
  }

  /** Pending inserts, oldest first. */
  async list (): Promise<LedgerOp[]> {
    const ops: LedgerOp[] = []
    for await (const value of this.store.values()) ops.push(JSON.parse(value) as LedgerOp)
    return ops
  }

  async remove (id: string): Promise<void> {
    for await (const key of this.store.keys()) {
      if (key.endsWith(`!${id}`)) await this.store.del(key, { sync: true })
    }
  }
}
