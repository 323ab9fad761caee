/**
 * The node's variables (AnyLog's dictionary): `x = 5` sets, `!x` reads. A scope may have a
 * parent: a REST request binds the variables of its body in its own scope, so concurrent
 * requests never see each other's `new_policy`, while reads fall through to the node's.
 *
 * A scope may hide secrets (REST reads, what a REPL shows): the executor then resolves every
 * reference made through it to its displayable form, `***` for a secret (see src/secrets.ts).
 * Scopes below a hiding scope hide too.
 */
export class Variables {
  private readonly values = new Map<string, unknown>()

  /**
   * @param parent where reads fall through to
   * @param writeTarget where writes go instead of this scope (a REST command's assignments
   *   set the node's variables, as in AnyLog, while it still reads its request's bindings)
   */
  constructor (
    private readonly parent?: Variables,
    private readonly writeTarget?: Variables,
    private readonly opts: { hideSecrets?: boolean } = {}
  ) {}

  /** True when references made through this scope must not see secrets. */
  get hidesSecrets (): boolean {
    return this.opts.hideSecrets === true || (this.parent?.hidesSecrets ?? false)
  }

  /** A view of these variables that hides secrets: reads fall through, writes land here. */
  hidingSecrets (): Variables {
    return this.hidesSecrets ? this : new Variables(this, this, { hideSecrets: true })
  }

  get (name: string): unknown {
    const key = name.toLowerCase()
    if (this.values.has(key)) return this.values.get(key)
    return this.parent?.get(name)
  }

  has (name: string): boolean {
    return this.values.has(name.toLowerCase()) || (this.parent?.has(name) ?? false)
  }

  set (name: string, value: unknown): void {
    if (this.writeTarget !== undefined) this.writeTarget.set(name, value)
    else this.values.set(name.toLowerCase(), value)
  }

  /** Removes a variable (AnyLog: `x = ""`); reads then fall through to the parent, if any. */
  delete (name: string): void {
    if (this.writeTarget !== undefined) this.writeTarget.delete(name)
    else this.values.delete(name.toLowerCase())
  }

  /** A child scope whose writes stay in it. */
  child (): Variables {
    return new Variables(this)
  }

  /** Every visible variable, inner scopes winning, sorted by name. */
  entries (): Array<[string, unknown]> {
    const merged = new Map(this.parent?.entries())
    for (const [k, v] of this.values) merged.set(k, v)
    return [...merged].sort(([a], [b]) => a.localeCompare(b))
  }
}
