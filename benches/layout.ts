// Text layout of the bench output: tables and lines fitted to the width of
// the output (at most 100 columns), by wrapping a table's last text column,
// splitting a table that is still too wide into parts that repeat its first
// column, and wrapping long lines with a hanging indent.

export type Align = 'l' | 'r'

/** The widest output, in columns; narrower when the terminal (or `COLUMNS`) says so. */
export const MAX_WIDTH = 100
/** Below this a table is not squeezed any further. */
export const MIN_WIDTH = 60
const GAP = '  '
const INDENT = '  '
/** A wrapped text column keeps at least this many columns, or this many when the table cannot be split. */
const MIN_WRAP = 24
const MIN_TIGHT = 12

/** The width to fit: the terminal's on a TTY, else `COLUMNS`, else 100; within [60, 100]. */
export function outputWidth(stream: { isTTY?: boolean; columns?: number } = process.stdout): number {
  const env = Number(process.env.COLUMNS)
  const cols = stream.isTTY && stream.columns ? stream.columns : Number.isInteger(env) && env > 0 ? env : MAX_WIDTH
  return Math.max(MIN_WIDTH, Math.min(MAX_WIDTH, cols))
}

// A unit after a number stays on its line ("64 KiB", "0.3 s").
const UNIT = /^(B|KiB|MiB|GiB|TiB|s|ms|us|µs|ns|x|%)[,;:.)]*$/

/** Words of `text`, a number and its unit as one. */
function words(text: string): string[] {
  const out: string[] = []
  for (const w of text.split(/ +/)) {
    if (out.length && UNIT.test(w) && /\d$/.test(out[out.length - 1])) out[out.length - 1] += ' ' + w
    else out.push(w)
  }
  return out
}

/** Words of `text` in lines of at most `width` characters; a word longer than that is cut. */
function wrapWords(text: string, width: number): string[] {
  const lines: string[] = []
  let line = ''
  for (let word of words(text)) {
    while (word.length > width) {
      if (line) lines.push(line)
      line = ''
      lines.push(word.slice(0, width))
      word = word.slice(width)
    }
    if (!line) line = word
    else if (line.length + 1 + word.length <= width) line += ' ' + word
    else {
      lines.push(line)
      line = word
    }
  }
  if (line || !lines.length) lines.push(line)
  return lines
}

/**
 * One line in lines of at most `width`: continuation lines are indented two
 * more than the line itself. A shell command (`command`) is broken between
 * its words with a trailing ` \`, so it still pastes as one command.
 */
export function wrapLine(line: string, width: number = outputWidth(), command = false): string[] {
  if (line.length <= width) return [line]
  const lead = /^ */.exec(line)![0]
  const hang = lead + '  '
  const body = line.slice(lead.length)
  if (command && !/['"\\]/.test(body)) {
    const out: string[] = []
    let cur = lead
    for (const word of body.split(' ')) {
      const start = cur === lead || cur === hang
      if (!start && cur.length + 1 + word.length + 2 > width) {
        out.push(cur + ' \\')
        cur = hang + word
      } else cur += (start ? '' : ' ') + word
    }
    out.push(cur)
    return out
  }
  if (body.includes(' | ')) return wrapFields(body.split(' | '), lead, hang, width)
  const first = wrapWords(body, width - lead.length)
  const rest = first.length > 1 ? wrapWords(first.slice(1).join(' '), width - hang.length) : []
  return [lead + first[0], ...rest.map((l) => hang + l)]
}

// A line of ` | `-separated fields: broken between fields where it can be,
// within a field (by words) where one alone is too long.
function wrapFields(fields: readonly string[], lead: string, hang: string, width: number): string[] {
  const out: string[] = []
  let cur = ''
  for (const f of fields) {
    const prefix = out.length ? hang : lead
    if (!cur) cur = prefix + f
    else if (cur.length + 3 + f.length <= width) cur += ' | ' + f
    else {
      out.push(cur + ' |')
      cur = hang + f
    }
    while (cur.length > width) {
      const [head, ...tail] = wrapLine(cur, width)
      out.push(head)
      cur = hang + (cur.startsWith(head) ? cur.slice(head.length).trimStart() : tail.map((l) => l.trimStart()).join(' '))
    }
  }
  if (cur) out.push(cur)
  return out
}

/** Every line of `text` wrapped to `width` (see `wrapLine`). */
export function fitText(text: string, width: number = outputWidth()): string {
  return text
    .split('\n')
    .flatMap((l) => wrapLine(l, width))
    .join('\n')
}

type Cell = string | number

function render(rows: readonly (readonly string[])[], align: readonly Align[], widths: readonly number[]): string[] {
  const lines = rows.map((r) =>
    (INDENT + r.map((cell, c) => (align[c] === 'l' ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join(GAP)).trimEnd(),
  )
  lines.splice(1, 0, INDENT + '-'.repeat(lines[0].length - INDENT.length))
  return lines
}

// The last column wrapped within `room`: continuation rows hold only its text.
function wrapLast(text: readonly (readonly string[])[], align: readonly Align[], widths: readonly number[], room: number): string {
  const last = widths.length - 1
  const rows: string[][] = []
  for (const [i, r] of text.entries()) {
    const parts = i === 0 ? [r[last]] : wrapWords(r[last], room)
    rows.push([...r.slice(0, last), parts[0]])
    for (const p of parts.slice(1)) rows.push([...r.slice(0, last).map(() => ''), p])
  }
  return render(rows, align, [...widths.slice(0, last), Math.min(room, widths[last])]).join('\n')
}

function span(widths: readonly number[]): number {
  return INDENT.length + widths.reduce((a, w) => a + w, 0) + GAP.length * (widths.length - 1)
}

/**
 * A table: a header row, a rule, then the rows; indented by two spaces and
 * fitted to `width`. A left-aligned last column (free text) wraps within its
 * cell; a table still too wide is split into parts of whole columns, each
 * part repeating the first column, printed one after the other.
 */
export function table(rows: readonly (readonly Cell[])[], align: readonly Align[], width: number = outputWidth()): string {
  const text = rows.map((r) => r.map(String))
  const cols = text[0].length
  const widths = text[0].map((_, c) => Math.max(...text.map((r) => r[c].length)))
  if (span(widths) <= width) return render(text, align, widths).join('\n')

  const last = cols - 1
  const room = width - span(widths.slice(0, last)) - GAP.length
  const wrappable = align[last] === 'l' && cols > 1
  if (wrappable && room >= MIN_WRAP) return wrapLast(text, align, widths, room)
  if (cols <= 2) return wrappable && room >= MIN_TIGHT ? wrapLast(text, align, widths, room) : render(text, align, widths).join('\n')

  // Split: the first column, then as many of the others as fit, part by part.
  const parts: number[][] = []
  let cur: number[] = [0]
  for (let c = 1; c < cols; c++) {
    // A wrappable last column joins the part when it keeps MIN_WRAP columns.
    const need = c === last && wrappable ? span(cur.map((k) => widths[k])) + GAP.length + MIN_WRAP : span([...cur, c].map((k) => widths[k]))
    if (cur.length > 1 && need > width) {
      parts.push(cur)
      cur = [0]
    }
    cur.push(c)
  }
  parts.push(cur)
  return parts
    .map((p) =>
      table(
        text.map((r) => p.map((k) => r[k])),
        p.map((k) => align[k]),
        width,
      ),
    )
    .join('\n\n')
}
