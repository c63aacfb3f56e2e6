// A list in one text cell (external ids, tags in CSV/TSV): items separated by ";" (or ","),
// a backslash escaping "\", ";" and "," inside an item. Export writes it, import reads it, so
// any item round-trips ("crm:A,1" -> "crm:A\,1" -> "crm:A,1"). A backslash before any other
// character is an ordinary character, so cells written before the escaping read as they did.

const SPECIAL = /[\\;,]/g;

/** One cell of items joined by ";", each escaped. */
export function joinListCell(items: readonly string[]): string {
  let out = '';
  for (let i = 0; i < items.length; i++) {
    const s = items[i]!;
    if (i > 0) out += ';';
    out += s.indexOf('\\') < 0 && s.indexOf(';') < 0 && s.indexOf(',') < 0 ? s : s.replace(SPECIAL, '\\$&');
  }
  return out;
}

/** The items of a cell (not trimmed; blank items kept for the caller to drop). */
export function splitListCell(cell: string): string[] {
  if (cell.indexOf('\\') < 0) return cell.split(/[;,]/);
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < cell.length; i++) {
    const ch = cell[i]!;
    if (ch === '\\') {
      const next = cell[i + 1];
      if (next === '\\' || next === ';' || next === ',') {
        cur += next;
        i++;
      } else cur += ch;
    } else if (ch === ';' || ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}
