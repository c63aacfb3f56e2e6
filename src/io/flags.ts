// Small flag parsers shared by several commands.
import { CompanyctlError } from '../errors.js';

export function parseVersionFlag(value: string | undefined, flag = '--if-version'): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1) {
    throw new CompanyctlError('COMPANYCTL_USAGE', `${flag}: ${JSON.stringify(value)} is not a version number`, { field: flag });
  }
  return Number(value);
}
