// Small flag parsers shared by several commands.
import { CompanyctlError } from '../errors.js';

export function parseVersionFlag(value: string | undefined, flag = '--if-version'): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < 1) {
    throw new CompanyctlError('COMPANYCTL_USAGE', `${flag}: ${JSON.stringify(value)} is not a version number`, { field: flag });
  }
  return Number(value);
}

/** A whole number >= 1 from a flag, or undefined when the flag was not given. */
export function parsePositiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) < 1) {
    throw new CompanyctlError('COMPANYCTL_USAGE', `${flag}: ${JSON.stringify(value)} is not a positive whole number`, { field: flag });
  }
  return Number(value);
}
