// Typed errors with stable codes. Tests assert `err.code`, never message text.
import { dirname } from 'node:path';

export const ExitCode = {
  ok: 0,
  failure: 1,
  usage: 2,
  partial: 3,
  auth: 4,
  cancelled: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Every stable error code, with the exit code it maps to. */
export const ErrorCodes = {
  COMPANYCTL_USAGE: ExitCode.usage,
  COMPANYCTL_INVALID_INPUT: ExitCode.usage,
  COMPANYCTL_MISSING_FIELD: ExitCode.usage,
  COMPANYCTL_CONFIRMATION_REQUIRED: ExitCode.usage,
  COMPANYCTL_FILE_EXISTS: ExitCode.usage,
  COMPANYCTL_NOT_FOUND: ExitCode.failure,
  COMPANYCTL_DUPLICATE_KEY: ExitCode.failure,
  COMPANYCTL_VERSION_CONFLICT: ExitCode.failure,
  COMPANYCTL_NOT_DELETED: ExitCode.failure,
  COMPANYCTL_STORE_NOT_INITIALISED: ExitCode.failure,
  COMPANYCTL_ALREADY_INITIALISED: ExitCode.failure,
  COMPANYCTL_SCHEMA_TOO_NEW: ExitCode.failure,
  COMPANYCTL_SCHEMA_OUTDATED: ExitCode.failure,
  COMPANYCTL_STORE_UNAVAILABLE: ExitCode.failure,
  COMPANYCTL_STORE_BUSY: ExitCode.failure,
  COMPANYCTL_DISK_FULL: ExitCode.failure,
  COMPANYCTL_CONFIG_INVALID: ExitCode.failure,
  COMPANYCTL_FILE_UNWRITABLE: ExitCode.failure,
  COMPANYCTL_FILE_UNREADABLE: ExitCode.failure,
  COMPANYCTL_AUTH_REQUIRED: ExitCode.auth,
  COMPANYCTL_AUTH_FAILED: ExitCode.auth,
  COMPANYCTL_AUTH_EXPIRED: ExitCode.auth,
  COMPANYCTL_AUTH_REVOKED: ExitCode.auth,
  COMPANYCTL_AUTH_INVALID: ExitCode.auth,
  COMPANYCTL_AUTH_WRONG_STORE: ExitCode.auth,
  COMPANYCTL_AUTH_FORBIDDEN: ExitCode.auth,
  COMPANYCTL_AUTH_INSECURE_FILE: ExitCode.auth,
  COMPANYCTL_KEYCHAIN_UNAVAILABLE: ExitCode.auth,
  COMPANYCTL_KEYCHAIN_TIMEOUT: ExitCode.auth,
  COMPANYCTL_USER_EXISTS: ExitCode.failure,
  COMPANYCTL_WEAK_PASSWORD: ExitCode.usage,
  COMPANYCTL_IMPORT_LOCKED: ExitCode.failure,
  COMPANYCTL_IMPORT_FAILED: ExitCode.failure,
  COMPANYCTL_IMPORT_TOO_MANY_ERRORS: ExitCode.failure,
  COMPANYCTL_IMPORT_INPUT_CHANGED: ExitCode.failure,
  COMPANYCTL_IMPORT_NOT_RESUMABLE: ExitCode.failure,
  COMPANYCTL_ENRICH_NOT_CONFIGURED: ExitCode.failure,
  COMPANYCTL_ENRICH_NO_API_KEY: ExitCode.failure,
  COMPANYCTL_ENRICH_LOCKED: ExitCode.failure,
  COMPANYCTL_ENRICH_HTTP_ERROR: ExitCode.failure,
  COMPANYCTL_ENRICH_UNAVAILABLE: ExitCode.failure,
  COMPANYCTL_ENRICH_BAD_RESPONSE: ExitCode.failure,
  COMPANYCTL_ENRICH_FAILED: ExitCode.failure,
  COMPANYCTL_WEBHOOK_DELIVERY_FAILED: ExitCode.failure,
  COMPANYCTL_BROKER_NOT_CONFIGURED: ExitCode.failure,
  COMPANYCTL_BROKER_NO_PASSWORD: ExitCode.failure,
  COMPANYCTL_BROKER_UNAVAILABLE: ExitCode.failure,
  COMPANYCTL_BROKER_REFUSED: ExitCode.failure,
  COMPANYCTL_STATE_LOCKED: ExitCode.failure,
  COMPANYCTL_AUDIT_BROKEN: ExitCode.failure,
  COMPANYCTL_SCHEMA_MISMATCH: ExitCode.failure,
  COMPANYCTL_TARGET_NOT_EMPTY: ExitCode.failure,
  COMPANYCTL_STORE_EXISTS: ExitCode.failure,
  COMPANYCTL_COPY_MISMATCH: ExitCode.failure,
  COMPANYCTL_ALERTS_FIRING: ExitCode.failure,
  COMPANYCTL_WAIT_TIMEOUT: ExitCode.failure,
  COMPANYCTL_CANCELLED: ExitCode.cancelled,
  COMPANYCTL_DECLINED: ExitCode.failure, // a "No" to a confirmation: an answer, not a Ctrl-C
  COMPANYCTL_INTERNAL: ExitCode.failure,
} as const;
export type ErrorCode = keyof typeof ErrorCodes;

export interface ErrorDetails {
  hint?: string;
  /** The input field or flag the error is about, when there is one. */
  field?: string;
  /** Extra machine-readable facts (e.g. the id of the company holding a key). */
  data?: Record<string, unknown>;
  cause?: unknown;
}

export class CompanyctlError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;
  readonly field?: string;
  readonly data?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'CompanyctlError';
    this.code = code;
    this.hint = details.hint;
    this.field = details.field;
    this.data = details.data;
  }

  get exitCode(): ExitCodeValue {
    return ErrorCodes[this.code];
  }

  toJSON(): { code: ErrorCode; message: string; hint?: string; field?: string; data?: Record<string, unknown> } {
    return { code: this.code, message: this.message, hint: this.hint, field: this.field, data: this.data };
  }
}

/** One input field failed validation: the message names the field and the reason. */
export class ValidationError extends CompanyctlError {
  readonly issues: { field: string; message: string }[];
  constructor(issues: { field: string; message: string }[], hint?: string) {
    const first = issues[0] ?? { field: 'input', message: 'is invalid' };
    const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
    super('COMPANYCTL_INVALID_INPUT', `${first.field}: ${first.message}${more}`, {
      field: first.field,
      hint,
      data: { issues },
    });
    this.issues = issues;
  }
}

export function isCompanyctlError(err: unknown): err is CompanyctlError {
  return err instanceof CompanyctlError;
}

// ENOSPC/EDQUOT from Node, SQLITE_FULL from SQLite, 53100 (disk_full) from PostgreSQL.
const DISK_FULL_CODES = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL', '53100']);
const DISK_FULL_TEXT = /no space left on device|database or disk is full|disk quota exceeded/i;

/**
 * The disk-full error behind `err` (itself or any error in its cause chain), as our typed
 * error; undefined when the failure is something else.
 */
export function diskFullError(err: unknown): CompanyctlError | undefined {
  let e: unknown = err;
  for (let depth = 0; e && depth < 8; depth++, e = (e as { cause?: unknown }).cause) {
    if (e instanceof CompanyctlError && e.code === 'COMPANYCTL_DISK_FULL') return e;
    const { code, message, path } = e as { code?: unknown; message?: unknown; path?: unknown };
    if (!DISK_FULL_CODES.has(String(code)) && !DISK_FULL_TEXT.test(String(message ?? ''))) continue;
    const where = typeof path === 'string' ? ` ${path}` : '';
    return new CompanyctlError('COMPANYCTL_DISK_FULL', `cannot write${where}: no space left on the disk (${String(code ?? 'full')})`, {
      hint: 'free some space (or raise the quota), then run the same command again: an import resumes from its last committed chunk',
      cause: err,
    });
  }
  return undefined;
}

const FS_REASONS: Record<string, string> = {
  ENOENT: 'no such file or folder',
  ENOTDIR: 'a part of the path is not a folder',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the disk',
  EDQUOT: 'disk quota exceeded',
  EISDIR: 'it is a folder',
  EEXIST: 'it already exists',
  EMFILE: 'too many open files',
  ENAMETOOLONG: 'the name is too long',
};

const READS = new Set(['read', 'stat', 'lstat', 'fstat', 'scandir', 'access', 'readlink', 'opendir']);

/**
 * A file-system error from node (it has a syscall and an errno code) as our typed error, else
 * undefined. `path` and `writing` say what the user named when node's error does not.
 */
export function fromFsError(e: unknown, opts: { flag?: string; path?: string; writing?: boolean } = {}): CompanyctlError | undefined {
  const err = e as NodeJS.ErrnoException;
  if (!err || typeof err !== 'object' || typeof err.syscall !== 'string' || !err.code) return undefined;
  const path = opts.path ?? err.path;
  if (typeof path !== 'string') return undefined;
  const reading = opts.writing === undefined ? READS.has(err.syscall) : !opts.writing;
  const verb = err.syscall === 'mkdir' ? 'create the folder' : reading ? 'read' : opts.writing || err.syscall !== 'open' ? 'write' : 'open';
  const reason =
    err.code === 'ENOENT' && opts.writing ? `the folder ${dirname(path)} does not exist` : err.code === 'ENOENT' && reading ? 'no such file' : (FS_REASONS[err.code] ?? err.code);
  const flag = opts.flag;
  // A full disk is its own error (free space, run again), whatever the file.
  if (!reading && (err.code === 'ENOSPC' || err.code === 'EDQUOT')) {
    return new CompanyctlError('COMPANYCTL_DISK_FULL', `${flag ? `${flag}: ` : ''}cannot write ${path}: ${FS_REASONS[err.code]}`, {
      field: flag,
      hint: 'free some space (or raise the quota), then run the same command again: an import resumes from its last committed chunk',
      data: { path, errno: err.code },
      cause: e,
    });
  }
  return new CompanyctlError(reading ? 'COMPANYCTL_FILE_UNREADABLE' : 'COMPANYCTL_FILE_UNWRITABLE', `${flag ? `${flag}: ` : ''}cannot ${verb} ${path}: ${reason}`, {
    field: flag,
    hint: reading ? undefined : 'check the path, its permissions and the free space, or choose another (see "companyctl config" for the paths in use)',
    data: { path, errno: err.code },
    cause: e,
  });
}
