import { readdirSync } from 'node:fs'
import { join } from 'node:path'

/** Every Markdown page under `<root>/docs`, sorted, as absolute paths. */
export function docsPages (root: string): string[] {
  return readdirSync(join(root, 'docs'), { withFileTypes: true, recursive: true })
    .filter(e => e.isFile() && e.name.endsWith('.md'))
    .map(e => join(e.parentPath, e.name))
    .sort()
}
