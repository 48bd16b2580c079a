// Formatting of numbers for the bench tables: a leaf module, imported by
// every module that prints (it imports none of them).

export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-US')
}

export function fmtGb(n: number): string {
  return n >= 10 ? n.toFixed(2) : n.toFixed(3)
}

export function fmtRatio(r: number | null | undefined): string {
  if (r == null || !Number.isFinite(r)) return '-'
  return (r >= 10 ? r.toFixed(1) : r >= 0.01 || r === 0 ? r.toFixed(2) : r.toPrecision(2)) + 'x'
}

export function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[u]}`
}

export function fmtHeap(d: number | undefined): string {
  if (d === undefined) return '-'
  const sign = d < 0 ? '-' : '+'
  const a = Math.abs(d)
  if (a < 1024) return `${sign}${a} B`
  if (a < 1024 * 1024) return `${sign}${(a / 1024).toFixed(1)} KiB`
  return `${sign}${(a / 1024 / 1024).toFixed(1)} MiB`
}

export function passMark(pass: boolean | null): string {
  return pass === null ? '' : pass ? 'pass' : 'MISS'
}

export function fmtTargetNs(ns: number | null): string {
  return ns === null ? '-' : `<= ${Number(ns.toPrecision(3))}`
}
