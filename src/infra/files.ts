// Files companyctl writes where the user says (rejects files, exports): created exclusively
// (O_CREAT|O_EXCL|O_NOFOLLOW, 0600), so a planted symlink is never followed and an existing file
// is never truncated unless the user passed --force; temp files get unpredictable names.
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, linkSync, lstatSync, openSync, renameSync, statSync, unlinkSync, type Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CompanyctlError } from '../errors.js';

const { O_RDWR, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
const EXCLUSIVE = O_CREAT | O_EXCL | O_NOFOLLOW;

const code = (e: unknown) => (e as NodeJS.ErrnoException)?.code;

function exists(path: string, flag: string): CompanyctlError {
  return new CompanyctlError('COMPANYCTL_FILE_EXISTS', `${flag}: ${path} already exists`, {
    field: flag,
    hint: 'choose another name, or pass --force to replace it',
    data: { path },
  });
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (e) {
    if (code(e) === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * A new file at `path`, open for reading and writing. Anything already there (a file, a
 * symlink) is refused, or with `force` removed first: the entry itself, never a link's target.
 */
export function createExclusive(path: string, opts: { force?: boolean; flag: string }): number {
  try {
    return openSync(path, O_RDWR | EXCLUSIVE, 0o600);
  } catch (e) {
    if (code(e) !== 'EEXIST') throw e;
    const st = lstatOrUndefined(path);
    // --force replaces a file or a symlink; never a device, a pipe or a folder (as root, unlinking /dev/null is possible).
    if (!opts.force || (st && !st.isFile() && !st.isSymbolicLink())) throw exists(path, opts.flag);
    unlinkSync(path);
    // Exclusive again: an entry planted since the unlink is refused, not followed.
    return openSync(path, O_RDWR | EXCLUSIVE, 0o600);
  }
}

/** Reopen a file this program made earlier (a resumed job's rejects file): a regular file, not a link. */
export function reopenOwn(path: string, flag: string): number {
  let fd: number;
  try {
    fd = openSync(path, O_RDWR | O_NOFOLLOW);
  } catch (e) {
    if (code(e) === 'ELOOP') throw notOurs(path, flag, 'it is now a symbolic link');
    throw e;
  }
  const st = fstatSync(fd);
  if (!st.isFile() || (process.getuid && st.uid !== process.getuid())) {
    closeSync(fd);
    throw notOurs(path, flag, st.isFile() ? 'another user owns it' : 'it is not a regular file');
  }
  return fd;
}

function notOurs(path: string, flag: string, why: string): CompanyctlError {
  return new CompanyctlError('COMPANYCTL_FILE_EXISTS', `${flag}: ${path} is not the file this job wrote (${why})`, {
    field: flag,
    hint: 'move it away, or resume with another rejects path',
    data: { path },
  });
}

/** A temp file beside `target` with an unpredictable name, created exclusively. */
export function createTempBeside(target: string): { path: string; fd: number } {
  const path = join(dirname(target), `.${basename(target)}.${randomBytes(9).toString('base64url')}.partial`);
  return { path, fd: openSync(path, O_WRONLY | EXCLUSIVE, 0o600) };
}

/**
 * Put a finished temp file at `target`: atomically replacing what is there with `force`,
 * otherwise only if nothing is (a hard link cannot overwrite, so a file that appeared meanwhile
 * is refused too).
 */
export function publishTemp(tmp: string, target: string, opts: { force?: boolean; flag: string }): void {
  if (opts.force) {
    renameSync(tmp, target);
    return;
  }
  try {
    linkSync(tmp, target);
  } catch (e) {
    if (code(e) === 'EEXIST') {
      unlinkSync(tmp);
      throw exists(target, opts.flag);
    }
    // A file system without hard links: check, then rename (the narrow race is accepted there).
    if (lstatOrUndefined(target)) {
      unlinkSync(tmp);
      throw exists(target, opts.flag);
    }
    renameSync(tmp, target);
    return;
  }
  unlinkSync(tmp);
}

/** What is at `path` now: nothing, a regular file (or a link to one), or a stream-like file (a pipe, a terminal, /dev/null). */
export function outputKind(path: string): 'none' | 'file' | 'stream' | 'other' {
  const l = lstatOrUndefined(path);
  if (!l) return 'none';
  let st: Stats;
  try {
    st = statSync(path);
  } catch {
    return 'file'; // a dangling link: an entry that --force would replace
  }
  if (st.isFile()) return 'file';
  if (st.isFIFO() || st.isCharacterDevice() || st.isSocket()) return 'stream';
  return 'other';
}

/** Both paths lead to the same file (hard links and symlinks included). */
export function sameFile(a: string, b: string): boolean {
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}
