// Files the user names (export -o, rejects, mapping, config, token and metrics files): every
// failure becomes one typed error that names the flag, the path and the reason in plain words.
import { CompanyctlError, fromFsError } from '../errors.js';

/** A failed write of a file the user named, as our typed error naming the flag and the reason. */
export function unwritable(path: string, e: unknown, flag?: string): CompanyctlError {
  if (e instanceof CompanyctlError) return e;
  return fromFsError(e, { flag, path, writing: true }) ?? new CompanyctlError('COMPANYCTL_FILE_UNWRITABLE', `${flag ? `${flag}: ` : ''}cannot write ${path}: ${String((e as Error)?.message ?? e)}`, { field: flag, cause: e });
}
