// Unicode case folding for name search (`company list --name`), done here rather than in the
// database: SQLite's lower() folds ASCII only, and PostgreSQL's depends on the store's locale.

/** The name folded for comparison: NFKC, then upper- and lower-cased (ß -> ss, ς -> σ, É -> é). */
export function foldName(s: string): string {
  return isAscii(s) ? s.toLowerCase() : s.normalize('NFKC').toUpperCase().toLowerCase().normalize('NFKC');
}

/**
 * The stored search column (company.name_fold): null when the name is ASCII, where the
 * store's own lower() gives the same folding, so most rows store nothing extra.
 */
export function nameFoldColumn(name: string): string | null {
  return isAscii(name) ? null : foldName(name);
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}
