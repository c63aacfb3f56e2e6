// Files the user names (export -o, rejects, mapping, config, token and metrics files): every
// failure becomes one typed error that names the flag, the path and the reason in plain words.
import { createWriteStream, openSync, statSync, type WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import { CompanyctlError, fromFsError } from '../errors.js';

/** A failed write of a file the user named, as our typed error naming the flag and the reason. */
export function unwritable(path: string, e: unknown, flag?: string): CompanyctlError {
  if (e instanceof CompanyctlError) return e;
  return fromFsError(e, { flag, path, writing: true }) ?? new CompanyctlError('COMPANYCTL_FILE_UNWRITABLE', `${flag ? `${flag}: ` : ''}cannot write ${path}: ${String((e as Error)?.message ?? e)}`, { field: flag, cause: e });
}

/** A failed read of a file the user named. */
export function unreadable(path: string, e: unknown, flag?: string): CompanyctlError {
  if (e instanceof CompanyctlError) return e;
  return fromFsError(e, { flag, path, writing: false }) ?? new CompanyctlError('COMPANYCTL_FILE_UNREADABLE', `${flag ? `${flag}: ` : ''}cannot read ${path}: ${String((e as Error)?.message ?? e)}`, { field: flag, cause: e });
}

export interface OutputFile {
  stream: WriteStream;
  /** Flush, close and put the file in place (rename over the target). */
  commit(): Promise<void>;
  /** Close and remove the partial file; returns `e` as the error to report (a failed write names the file). */
  abort(e: unknown): Promise<unknown>;
}

/**
 * Open an output file the user named, written beside the target and renamed at the end, so a
 * failed run never leaves half a file; a device or pipe (/dev/stdout, a FIFO) is written as is.
 * The open happens here, so a missing or read-only folder fails before any work.
 */
export async function openOutputFile(path: string, flag: string, mode = 0o600): Promise<OutputFile> {
  let special = false;
  try {
    special = !statSync(path).isFile();
  } catch {
    // does not exist yet: the usual case
  }
  const tmp = special ? path : `${path}.partial-${process.pid}`;
  let fd: number;
  try {
    fd = openSync(tmp, special ? 'w' : 'wx', mode);
  } catch (e) {
    throw unwritable(path, e, flag);
  }
  const stream = createWriteStream('', { fd, autoClose: true });
  let failure: unknown;
  // Without a listener a failed write (a full disk) is an unhandled 'error' event: a crash.
  stream.on('error', (e) => (failure ??= e));
  return {
    stream,
    async commit() {
      if (failure) throw unwritable(path, failure, flag);
      stream.end();
      await finished(stream).catch((e: unknown) => (failure ??= e));
      if (failure) {
        if (!special) await rm(tmp, { force: true });
        throw unwritable(path, failure, flag);
      }
      if (!special) {
        try {
          await rename(tmp, path);
        } catch (e) {
          await rm(tmp, { force: true });
          throw unwritable(path, e, flag);
        }
      }
    },
    async abort(e) {
      stream.destroy();
      await finished(stream).catch(() => undefined);
      if (!special) await rm(tmp, { force: true });
      return e === failure || (failure && !(e instanceof CompanyctlError)) ? unwritable(path, failure, flag) : e;
    },
  };
}
