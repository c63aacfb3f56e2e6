// A company reference typed on the command line -> a key the service understands.
import { parseCompanyRef, type NaturalKey } from '../domain/company.js';
import { CompanyctlError } from '../errors.js';

export function resolveRef(ref: string, argName = '<ref>'): NaturalKey {
  const key = parseCompanyRef(ref);
  if (!key) {
    throw new CompanyctlError('COMPANYCTL_USAGE', `${argName}: ${JSON.stringify(ref)} is not a company id, domain, LEI or registration key`, {
      field: argName,
      hint: 'examples: 42, acme.de, 529900T8BM49AURSDO55, "DE:HRB 12345"',
    });
  }
  return key;
}
