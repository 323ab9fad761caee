/**
 * A set of names kept in sorted order (the order placement takes units in): insert and delete
 * by binary search, and the first name after a given one. Arrays of a few tens of thousands
 * of names move in microseconds, which a tree would not beat here.
 */
export class SortedNames {
  private readonly names: string[] = []

  get size (): number { return this.names.length }

  add (name: string): void {
    const i = this.lowerBound(name)
    if (this.names[i] !== name) this.names.splice(i, 0, name)
  }

  delete (name: string): void {
    const i = this.lowerBound(name)
    if (this.names[i] === name) this.names.splice(i, 1)
  }

  /** The first name after `after` (the first of all when undefined). */
  firstAfter (after: string | undefined): string | undefined {
    if (after === undefined) return this.names[0]
    let i = this.lowerBound(after)
    if (this.names[i] === after) i++
    return this.names[i]
  }

  /** Index of the first name not below `name`. */
  private lowerBound (name: string): number {
    let lo = 0
    let hi = this.names.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.names[mid] < name) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}
