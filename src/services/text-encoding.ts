// Which text encoding a file without a BOM is in, from its bytes: UTF-8 when the bytes are
// valid UTF-8; otherwise chardet (ICU's detector: CJK and Cyrillic among others) ranks the
// candidates and a score of the decoded text decides among the single-byte ones, which
// chardet cannot tell apart on names (it has no Mac Roman at all).
import type Iconv from 'iconv-lite';

export interface EncodingGuess {
  /** An iconv-lite name ('utf-8', 'windows-1252', 'macintosh', ...). */
  encoding: string;
  /** What a person calls it, for messages ("Mac Roman"). */
  label: string;
}

/** Bytes enough to judge; more only costs time. */
export const SAMPLE_BYTES = 64 << 10;

const LABELS: Record<string, string> = {
  'utf-8': 'UTF-8',
  'windows-1252': 'Windows-1252 (Western European)',
  macintosh: 'Mac Roman',
  cp850: 'DOS code page 850',
  'windows-1250': 'Windows-1250 (Central European)',
  'windows-1251': 'Windows-1251 (Cyrillic)',
  'koi8-r': 'KOI8-R (Cyrillic)',
};

// chardet names -> iconv-lite names; ISO-8859-1 files are read as its superset, Windows-1252.
const FROM_CHARDET: Record<string, string> = { 'iso-8859-1': 'windows-1252', ascii: 'utf-8' };
const MULTI_BYTE = new Set(['shift_jis', 'euc-jp', 'euc-kr', 'gb18030', 'big5', 'iso-2022-jp', 'iso-2022-kr', 'iso-2022-cn', 'utf-16le', 'utf-16be', 'utf-32le', 'utf-32be']);
/** Single-byte encodings always weighed, most common first (a tie goes to the first). */
const LATIN = ['windows-1252', 'macintosh', 'cp850'];

/** Valid UTF-8, allowing a sequence cut at the end of the sample. */
function isUtf8(sample: Buffer, complete: boolean): boolean {
  const dec = new TextDecoder('utf-8', { fatal: true });
  try {
    dec.decode(sample, { stream: !complete });
    return true;
  } catch {
    return false;
  }
}

/**
 * How much the decoded text reads like names and words: a non-ASCII letter continuing a word
 * in its case scores, one switching to upper case mid-word or a symbol inside a word costs,
 * C1 controls and undecodable bytes cost most, and so does a word of accented Latin letters only.
 */
export function plausibility(text: string): number {
  let score = 0;
  const chars = Array.from(text);
  // Modifier letters (ˇ ˆ ˜) are accents standing alone: symbols here.
  const isLetter = (c: string | undefined) => c !== undefined && /[\p{Lu}\p{Ll}\p{Lt}\p{Lo}]/u.test(c);
  const isLower = (c: string) => c !== c.toUpperCase() && c === c.toLowerCase();
  const isUpper = (c: string) => c !== c.toLowerCase() && c === c.toUpperCase();
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    const code = ch.codePointAt(0)!;
    if (code < 0x80) continue;
    if (code === 0xfffd || code <= 0x9f) {
      score -= 5;
      continue;
    }
    const prev = chars[i - 1];
    if (isLetter(ch)) {
      // Upper case inside a word before or after a lower-case letter ("NestlŽ", "MÅller") is rare.
      if (isLetter(prev)) score += isUpper(ch) && (isLower(prev!) || (chars[i + 1] !== undefined && isLower(chars[i + 1]!))) ? -2 : 3;
      else score += 1;
    } else if (isLetter(prev) && isLetter(chars[i + 1])) {
      score -= 3;
    } else if (!/[\p{P}\p{Sc}\p{Zs}°§]/u.test(ch)) {
      score -= 1;
    }
  }
  // A word of three or more accented Latin letters and no plain one ("Ăŕçďđîě") is another
  // script read in the wrong code page.
  for (const m of text.matchAll(/\p{L}{3,}/gu)) {
    if (!/[A-Za-z]/.test(m[0]) && /^\p{Script=Latin}+$/u.test(m[0])) score -= 4 * m[0].length;
  }
  return score;
}

/** The likely encoding of `sample` (the first bytes of the input; `complete` when it is all of it). */
export async function detectEncoding(sample: Buffer, complete = false): Promise<EncodingGuess> {
  if (isUtf8(sample, complete)) return guess('utf-8');
  const { default: iconv } = (await import('iconv-lite')) as { default: typeof Iconv };
  const { analyse } = await import('chardet');
  const ranked = analyse(sample).map((m) => {
    const name = m.name.toLowerCase();
    return { name: FROM_CHARDET[name] ?? name, confidence: m.confidence };
  });
  const top = ranked[0];
  if (top && MULTI_BYTE.has(top.name) && top.confidence >= 50 && iconv.encodingExists(top.name)) return guess(top.name);
  const candidates: string[] = [];
  for (const r of ranked.slice(0, 6)) {
    if (!MULTI_BYTE.has(r.name) && r.name !== 'utf-8' && iconv.encodingExists(r.name) && !candidates.includes(r.name)) candidates.push(r.name);
  }
  for (const l of LATIN) if (!candidates.includes(l)) candidates.push(l);
  let best = candidates[0]!;
  let bestScore = -Infinity;
  for (const c of candidates) {
    // On a tie (text both read alike), the most common encoding wins, Windows-1252 first.
    const prior = c === 'windows-1252' ? 0.2 : c === 'macintosh' ? 0.1 : 0;
    const s = plausibility(iconv.decode(sample, c)) + prior;
    if (s > bestScore) [best, bestScore] = [c, s];
  }
  return guess(best);
}

function guess(encoding: string): EncodingGuess {
  return { encoding, label: LABELS[encoding] ?? encoding.toUpperCase() };
}
