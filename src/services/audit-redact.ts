// Secrets never reach the audit log or the app log: passwords in URLs, values of secret-looking
// flags, JWTs and bearer tokens are replaced by ***. Pure functions, cheap to import.
const SECRET_FLAG = /^--?[\w-]*(password|passwd|token|secret|api-?key|auth|credential)[\w-]*$/i;
const SECRET_FLAG_EQ = /^(--?[\w-]*(?:password|passwd|token|secret|api-?key|auth|credential)[\w-]*)=.*$/i;
// Flags that name something rather than carry a secret.
const NOT_SECRET = new Set(['--password-stdin', '--insecure-storage', '--token-name']);

/** Remove secrets from free text (messages, single arguments). */
export function redactText(text: string): string {
  return text
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+/gi, redactUrlPassword)
    .replace(/\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]+/g, '***')
    .replace(/\b(bearer\s+)[\w.~+/=-]{8,}/gi, '$1***')
    .replace(/([?&](?:password|passwd|pwd|token|secret|api_?key|access_token|sslpassword)=)[^&\s]*/gi, '$1***');
}

/**
 * A URL's password becomes ***, whatever it holds (@ : / %). The URL parser decides where the
 * user info ends; text it cannot parse (a raw / in the password) is cut at its last @ instead.
 */
function redactUrlPassword(candidate: string): string {
  try {
    const url = new URL(candidate);
    if (url.password === '') return candidate;
    url.password = '***';
    return url.href;
  } catch {
    const start = candidate.indexOf('://') + 3;
    const at = candidate.lastIndexOf('@');
    const colon = candidate.indexOf(':', start);
    if (at < start || colon < 0 || colon > at) return candidate;
    return `${candidate.slice(0, colon + 1)}***${candidate.slice(at)}`;
  }
}

/** The command line as typed, secrets removed: `companyctl company update 42 --employees 7`. */
export function redactArgv(args: string[]): string {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const eq = SECRET_FLAG_EQ.exec(a);
    if (eq && !NOT_SECRET.has(eq[1]!.toLowerCase())) {
      out.push(`${eq[1]}=***`);
    } else if (SECRET_FLAG.test(a) && !NOT_SECRET.has(a.toLowerCase()) && i + 1 < args.length && !args[i + 1]!.startsWith('-')) {
      out.push(a, '***');
      i++;
    } else {
      out.push(redactText(a));
    }
  }
  return out.map(quote).join(' ');
}

function quote(a: string): string {
  return /^[\w@%+=:,./*-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`;
}
