// The rejects file: every row an import turns away, with its line, field and reason. For
// tabular input (CSV, TSV) a CSV of line, field, reason and the original columns, so a fixed
// rejects file imports again as it is; for JSON input an NDJSON line holding the record.
// The committed length is kept in the job's checkpoint, so a resume never repeats a reject.
import { closeSync, existsSync, fdatasyncSync, fstatSync, ftruncateSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import { CompanyctlError } from '../../errors.js';
import { createExclusive, outputKind, reopenOwn, sameFile } from '../../infra/files.js';
import { ensurePrivateDir } from '../../infra/paths.js';
import type { Reject } from './rows.js';

/**
 * Before a run starts: a --rejects path must not be the input, and must be new unless --force
 * (the exclusive open when the file is created is what guarantees it; this fails early).
 */
export function checkRejectsPath(path: string, opts: { force?: boolean; input: string; ownedByJob?: string }): void {
  if (opts.input !== '-' && sameFile(path, opts.input)) {
    throw new CompanyctlError('COMPANYCTL_USAGE', `--rejects: ${path} is the input file`, { field: '--rejects', hint: 'write the rejects to another file' });
  }
  const kind = outputKind(path);
  if (kind === 'stream' || kind === 'other') {
    throw new CompanyctlError('COMPANYCTL_FILE_EXISTS', `--rejects: ${path} is not a regular file`, { field: '--rejects', hint: 'name a new file', data: { path } });
  }
  if (!opts.force && path !== opts.ownedByJob && kind !== 'none') {
    throw new CompanyctlError('COMPANYCTL_FILE_EXISTS', `--rejects: ${path} already exists`, {
      field: '--rejects',
      hint: 'choose another name, or pass --force to replace it',
      data: { path },
    });
  }
}

// Quote what a spreadsheet or a re-import would misread: line breaks and edge white space too.
const CSV_OPTIONS = { record_delimiter: '\r\n', quoted_match: [/[\r\n]/, /^\s|\s$/] };

export class RejectsFile {
  private fd: number | undefined;
  bytes = 0;
  constructor(
    readonly path: string,
    private readonly kind: 'csv' | 'ndjson',
  ) {}

  /**
   * Open for appending after `committedBytes` (anything past it belongs to an uncommitted chunk).
   * A new file is created exclusively, never through a symlink: an existing one is refused
   * unless `replace` (--force, or the default path in companyctl's own folder); a resumed job
   * reopens the file it wrote, which must still be a regular file of ours. Never the input.
   */
  open(committedBytes: number, columns: string[] | undefined, opts: { resume: boolean; replace: boolean; input: string }): void {
    if (opts.input !== '-' && sameFile(this.path, opts.input)) checkRejectsPath(this.path, { force: true, input: opts.input });
    ensurePrivateDir(dirname(this.path));
    this.fd =
      opts.resume && existsSync(this.path)
        ? reopenOwn(this.path, '--rejects')
        : createExclusive(this.path, { force: opts.replace, flag: '--rejects' });
    const size = fstatSync(this.fd).size;
    if (size > committedBytes) ftruncateSync(this.fd, committedBytes);
    this.bytes = Math.min(size, committedBytes);
    if (this.bytes === 0 && this.kind === 'csv') this.append(stringify([['line', 'field', 'reason', ...(columns ?? [])]], CSV_OPTIONS));
  }

  private append(s: string): void {
    const buf = Buffer.from(s, 'utf8');
    writeSync(this.fd!, buf, 0, buf.length, this.bytes);
    this.bytes += buf.length;
  }

  write(rejects: Reject[]): void {
    if (rejects.length === 0) return;
    if (this.kind === 'csv') {
      this.append(stringify(rejects.map((r) => [String(r.line), r.field, r.reason, ...(r.cells ?? [])]), CSV_OPTIONS));
      return;
    }
    let out = '';
    for (const r of rejects) {
      const entry = (row: unknown) => `${JSON.stringify(r.file === undefined ? { line: r.line, field: r.field, reason: r.reason, row } : { file: r.file, line: r.line, field: r.field, reason: r.reason, row })}\n`;
      try {
        out += entry(r.text === undefined ? null : JSON.parse(r.text));
      } catch {
        // Not JSON, or nested too deep to write back: keep the text as it was.
        out += entry(r.text ?? null);
      }
    }
    this.append(out);
  }

  truncate(to: number): void {
    if (this.fd === undefined) return;
    ftruncateSync(this.fd, to);
    this.bytes = to;
  }

  sync(): void {
    if (this.fd !== undefined) fdatasyncSync(this.fd);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
