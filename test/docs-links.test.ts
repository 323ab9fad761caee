import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { docsPages } from './helpers/docs.js'

// The documentation's relative links: README.md, ARCHITECTURE.md and every page under docs/
// link only to files that exist and to anchors that exist in the Markdown file they name.
// The README stays a front door (at most README_MAX_LINES lines) and every docs page links
// back to it.

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const README_MAX_LINES = 250

/** README.md, ARCHITECTURE.md and docs/**\/*.md, as absolute paths. */
function markdownFiles (): string[] {
  return [join(ROOT, 'README.md'), join(ROOT, 'ARCHITECTURE.md'), ...docsPages(ROOT)]
}

/**
 * The lines of a Markdown text outside fenced code blocks (``` or ~~~, possibly indented under
 * a list item; a fence closes on the same character, at least as many times), with inline
 * code spans blanked: links and headings inside code are text, not Markdown.
 */
function proseLines (text: string): Array<{ line: number, text: string }> {
  const out: Array<{ line: number, text: string }> = []
  let fence: string | undefined
  text.split('\n').forEach((raw, i) => {
    const open = /^\s*(`{3,}|~{3,})/.exec(raw)
    if (fence !== undefined) {
      if (open !== null && open[1][0] === fence[0] && open[1].length >= fence.length && raw.trim() === open[1]) fence = undefined
      return
    }
    if (open !== null) {
      fence = open[1]
      return
    }
    out.push({ line: i + 1, text: raw.replace(/(`+)[\s\S]*?\1/g, match => ' '.repeat(match.length)) })
  })
  return out
}

/**
 * GitHub's heading anchor (the rules of github-slugger, which github.com follows): the
 * heading's text as rendered (inline code keeps its content, links keep their text, emphasis
 * markers and HTML tags go), lower-cased; every character that is not a letter, a mark, a
 * digit, a connector (`_`), a hyphen or a space is removed; each space becomes a hyphen (runs
 * are not collapsed). A slug already taken in the same file gets `-1`, then `-2`, ...
 */
function headingText (heading: string): string {
  // code spans keep their text verbatim (underscores included); elsewhere markup is dropped
  return heading.split(/(`+[^`]*`+)/).map(part => {
    if (part.startsWith('`')) return part.replace(/^`+|`+$/g, '')
    return part
      .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links and images: their text
      .replace(/<[^>]+>/g, '') // HTML tags
      .replace(/(?<![\p{L}\p{N}])_+|_+(?![\p{L}\p{N}])/gu, '') // _emphasis_, not snake_case
      .replace(/\*+/g, '')
  }).join('').trim()
}

function slugify (text: string): string {
  return text.toLowerCase().replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '').replace(/ /g, '-')
}

/** Every anchor a Markdown file defines: its headings' slugs and explicit `<a id|name=...>`. */
function anchorsOf (text: string): Set<string> {
  const anchors = new Set<string>()
  const occurrences = new Map<string, number>()
  for (const { text: line } of proseLines(text)) {
    for (const m of line.matchAll(/<a\s[^>]*?\b(?:id|name)\s*=\s*["']([^"']+)["']/gi)) anchors.add(m[1])
  }
  // headings are read with their code spans (proseLines blanks those)
  let fence: string | undefined
  for (const raw of text.split('\n')) {
    const open = /^\s*(`{3,}|~{3,})/.exec(raw)
    if (fence !== undefined) {
      if (open !== null && open[1][0] === fence[0] && open[1].length >= fence.length && raw.trim() === open[1]) fence = undefined
      continue
    }
    if (open !== null) { fence = open[1]; continue }
    const heading = /^ {0,3}#{1,6}\s+(.*?)(?:\s+#+\s*)?$/.exec(raw)
    if (heading === null) continue
    const base = slugify(headingText(heading[1]))
    let slug = base
    while (occurrences.has(slug)) {
      const n = occurrences.get(base)! + 1
      occurrences.set(base, n)
      slug = `${base}-${n}`
    }
    occurrences.set(slug, 0)
    anchors.add(slug)
  }
  return anchors
}

interface Link { file: string, line: number, target: string }

/** Every link target in a Markdown file: inline links and images, reference definitions, <a href>, <img src>. */
function linksOf (file: string, text: string): Link[] {
  const links: Link[] = []
  for (const { line, text: prose } of proseLines(text)) {
    const targets = [
      ...[...prose.matchAll(/!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]*)>?(?:\s+["'(][^)]*)?\)/g)].map(m => m[1]),
      ...[...prose.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/g)].map(m => m[1]),
      ...[...prose.matchAll(/<(?:a|img)\s[^>]*?\b(?:href|src)\s*=\s*["']([^"']+)["']/gi)].map(m => m[1])
    ]
    for (const target of targets) links.push({ file, line, target })
  }
  return links
}

/** What is wrong with one link, or undefined when it holds. External links are not checked. */
function problemOf (link: Link, anchorCache: Map<string, Set<string>>): string | undefined {
  const { target } = link
  if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) return undefined // http(s), mailto, ...
  if (target === '') return 'an empty link'
  const hash = target.indexOf('#')
  const pathPart = hash === -1 ? target : target.slice(0, hash)
  const anchor = hash === -1 ? undefined : decodeURIComponent(target.slice(hash + 1))
  const path = pathPart === '' ? link.file : resolve(dirname(link.file), decodeURIComponent(pathPart))
  if (!existsSync(path)) return `${relative(ROOT, path)} does not exist`
  if (anchor === undefined || !path.endsWith('.md')) return undefined
  let anchors = anchorCache.get(path)
  if (anchors === undefined) {
    anchors = anchorsOf(readFileSync(path, 'utf8'))
    anchorCache.set(path, anchors)
  }
  return anchors.has(anchor) ? undefined : `no anchor #${anchor} in ${relative(ROOT, path)}`
}

t.test('headings get GitHub\'s anchors', async t => {
  t.equal(slugify(headingText('High availability: several masters')), 'high-availability-several-masters')
  t.equal(slugify(headingText('Queries: `where` and `bring`')), 'queries-where-and-bring')
  t.equal(slugify(headingText('Results: 2026-11-27, 2 vCPU AMD EPYC, 24 GB, Node 20.20.2, loopback')), 'results-2026-11-27-2-vcpu-amd-epyc-24-gb-node-20202-loopback')
  t.equal(slugify(headingText('What `$KEY` reads')), 'what-key-reads')
  t.equal(slugify(headingText('The `DB_TYPE` key and _emphasis_')), 'the-db_type-key-and-emphasis')
  t.equal(slugify(headingText('[Linked](x.md) **bold** <code>html</code>')), 'linked-bold-html')
  t.equal(slugify(headingText('A  B')), 'a--b', 'each space is a hyphen')
  const anchors = anchorsOf('# Tests\n\n## Tests\n\n```\n# not a heading\n```\n\n### Tests\n\n<a id="kept"></a>\n')
  t.same([...anchors].sort(), ['kept', 'tests', 'tests-1', 'tests-2'], 'duplicates get -1, -2; code is not a heading')
})

t.test('the link checker finds broken links and anchors', async t => {
  const file = join(ROOT, 'docs', 'README.md')
  const check = (target: string) => problemOf({ file, line: 1, target }, new Map())
  t.equal(check('../README.md'), undefined)
  t.equal(check('../README.md#a-five-minute-tour'), undefined)
  t.match(check('no-such-page.md'), /does not exist/)
  t.match(check('../README.md#no-such-section'), /no anchor #no-such-section/)
  t.match(check('#no-such-section'), /no anchor/)
  t.equal(check('https://example.com/x.md#y'), undefined, 'external links are not checked')
  const links = linksOf(file, 'see [a](a.md), `[b](b.md)`, ![c](c.png)\n```\n[d](d.md)\n```\n[e]: e.md\n<a href="f.md">f</a>\n')
  t.same(links.map(l => l.target), ['a.md', 'c.png', 'e.md', 'f.md'], 'links in code are not links')
})

t.test('every relative link in README.md, ARCHITECTURE.md and docs/ resolves', async t => {
  const files = markdownFiles()
  t.ok(files.length >= 3, `${files.length} Markdown files`)
  const anchorCache = new Map<string, Set<string>>()
  const problems: string[] = []
  let count = 0
  for (const file of files) {
    for (const link of linksOf(file, readFileSync(file, 'utf8'))) {
      count++
      const problem = problemOf(link, anchorCache)
      if (problem !== undefined) problems.push(`${relative(ROOT, link.file)}:${link.line}: ${link.target}: ${problem}`)
    }
  }
  t.ok(count > 20, `${count} links checked`)
  t.same(problems, [], 'no broken link')
})

t.test(`README.md is a front door: at most ${README_MAX_LINES} lines`, async t => {
  const lines = readFileSync(join(ROOT, 'README.md'), 'utf8').replace(/\n$/, '').split('\n').length
  t.ok(lines <= README_MAX_LINES, `README.md has ${lines} lines`)
})

t.test('every docs page links back to the README', async t => {
  const readme = join(ROOT, 'README.md')
  const pages = markdownFiles().filter(f => f.startsWith(join(ROOT, 'docs')))
  t.ok(pages.length > 0, `${pages.length} pages`)
  for (const page of pages) {
    const back = linksOf(page, readFileSync(page, 'utf8'))
      .some(l => !/^[a-z][a-z0-9+.-]*:/i.test(l.target) && resolve(dirname(page), decodeURIComponent(l.target.split('#')[0] || '.')) === readme)
    t.ok(back, `${relative(ROOT, page)} links to README.md`)
  }
})
