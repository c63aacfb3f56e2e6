// The one escaping helper for text that reaches a terminal: control characters from input
// files, the store or remote servers are shown as visible \uXXXX, never obeyed.

// C0 but tab and newline, DEL, C1 (U+009B is a one-byte CSI to some terminals).
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
const CONTROL_AND_NEWLINE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g;
// JSON.stringify leaves DEL, C1 and the JS line separators raw; as \u escapes they mean the same.
const JSON_RAW = /[\u007f-\u009f\u2028\u2029]/g;

const visible = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

/** Control characters as visible \uXXXX; tabs stay, newlines stay unless `oneLine`. */
export function escapeControl(text: string, opts: { oneLine?: boolean } = {}): string {
  return text.replace(opts.oneLine ? CONTROL_AND_NEWLINE : CONTROL, visible);
}

/** JSON.stringify, with every character that could steer a terminal written as a \u escape. */
export function terminalSafeJson(value: unknown, space?: number): string {
  return JSON.stringify(value, null, space).replace(JSON_RAW, visible);
}
