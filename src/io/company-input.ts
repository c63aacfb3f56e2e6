// Company fields as command-line flags (shared by `company create` and `company update`),
// a JSON document on stdin (`--from-json -`), and prompts for missing required fields.
import type { Command } from 'commander';
import type { Context } from '../context.js';
import type { CompanyInput } from '../domain/company.js';
import { CompanyctlError } from '../errors.js';
import { joinListCell } from '../domain/list-cell.js';
import { missingAnswer } from './prompter.js';

/** flag name -> field; every settable field has one. */
const FLAGS: [flag: string, field: keyof CompanyInput, description: string][] = [
  ['--name <name>', 'name', 'trading name (required for create)'],
  ['--legal-name <name>', 'legalName', 'registered legal name'],
  ['--domain <domain>', 'domain', 'web domain; normalised (https://www.Example.com -> example.com)'],
  ['--website <url>', 'website', 'website URL'],
  ['--registration-number <number>', 'registrationNumber', 'company registration number (with --registration-country)'],
  ['--registration-country <code>', 'registrationCountry', 'country: ISO code (GB, GBR) or English name, or a subdivision such as US-DE'],
  ['--lei <lei>', 'lei', 'Legal Entity Identifier (ISO 17442; check digits verified)'],
  ['--industry <industry>', 'industry', 'industry'],
  ['--employees <n>', 'employees', 'number of employees'],
  ['--revenue-amount <amount>', 'revenueAmount', 'annual revenue, exact decimal (e.g. 1250000.50)'],
  ['--revenue-currency <code>', 'revenueCurrency', 'ISO 4217 currency of the revenue (e.g. EUR)'],
  ['--address-line1 <text>', 'addressLine1', 'address line 1'],
  ['--address-line2 <text>', 'addressLine2', 'address line 2'],
  ['--city <city>', 'city', 'city'],
  ['--region <region>', 'region', 'region or state'],
  ['--postcode <postcode>', 'postcode', 'postcode'],
  ['--country <country>', 'country', 'country of the address: ISO code (DE, DEU) or English name; stored as alpha-2'],
  ['--status <status>', 'status', 'active, dormant or dissolved'],
  ['--incorporation-date <date>', 'incorporationDate', 'YYYY-MM-DD'],
];

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function addCompanyFlags(cmd: Command): Command {
  for (const [flag, , description] of FLAGS) cmd.option(flag, description);
  cmd.option('--tag <tag>', 'a tag (repeatable; replaces the tags on update)', collect);
  cmd.option('--external-id <source:id>', 'an id in another system, e.g. crm:48213 (repeatable)', collect);
  cmd.option('--from-json <file>', 'read the fields from a JSON object in a file, or - for stdin (flags win over it)');
  return cmd;
}

/** The camelCase commander key of a flag: '--legal-name <name>' -> 'legalName'. */
function optionKey(flag: string): string {
  return flag
    .split(' ')[0]!
    .replace(/^--/, '')
    .replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** Raw (unvalidated) fields from --from-json and the flags; flags override the document. */
export async function readCompanyFields(ctx: Context, opts: Record<string, unknown>): Promise<Record<string, unknown>> {
  const raw: Record<string, unknown> = opts.fromJson ? await readJsonDocument(ctx, String(opts.fromJson)) : {};
  for (const [flag, field] of FLAGS) {
    const v = opts[optionKey(flag)];
    if (v !== undefined) raw[field] = v;
  }
  if (opts.tag !== undefined) raw.tags = opts.tag;
  if (opts.externalId !== undefined) raw.externalIds = joinListCell(opts.externalId as string[]); // one flag, one id, even with , or ;
  return raw;
}

async function readJsonDocument(ctx: Context, source: string): Promise<Record<string, unknown>> {
  let text: string;
  if (source === '-') {
    if (ctx.io.stdinIsTTY) ctx.notice('reading a JSON object from stdin (end with Ctrl-D)');
    const chunks: Buffer[] = [];
    for await (const chunk of ctx.io.stdin) chunks.push(Buffer.from(chunk as Buffer));
    text = Buffer.concat(chunks).toString('utf8');
  } else {
    const { readFile } = await import('node:fs/promises');
    try {
      text = await readFile(source, 'utf8');
    } catch (e) {
      throw new CompanyctlError('COMPANYCTL_USAGE', `--from-json: cannot read ${source}: ${(e as Error).message}`, { field: '--from-json' });
    }
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    throw new CompanyctlError('COMPANYCTL_INVALID_INPUT', `--from-json: not valid JSON: ${(e as Error).message}`, { field: '--from-json' });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new CompanyctlError('COMPANYCTL_INVALID_INPUT', '--from-json: must be one JSON object of company fields', { field: '--from-json' });
  }
  return doc as Record<string, unknown>;
}

/** Ask for the required fields that are missing; without a terminal, name the flag. */
export async function promptMissingRequired(ctx: Context, raw: Record<string, unknown>): Promise<void> {
  const missing = (v: unknown) => v === undefined || v === null || (typeof v === 'string' && v.trim() === '');
  if (!missing(raw.name)) return;
  if (!ctx.prompter.canPrompt) throw missingAnswer('--name', 'name');
  const n = await import('../domain/normalise.js');
  // Checked as typed, with the rule that the final validation applies: asked again, never refused later.
  const check = (fn: (v: string) => unknown) => (v: string) => {
    if (v.trim() === '') return true;
    try {
      fn(v);
      return true;
    } catch (e) {
      return (e as Error).message;
    }
  };
  const nameOk = (v: string) => (n.CONTROL_CHARS.test(v) ? 'must not contain control characters' : n.cleanText(v).length > 300 ? 'must be at most 300 characters' : true);
  raw.name = await ctx.prompter.input('Company name', { required: true, validate: nameOk });
  if (missing(raw.domain)) {
    const domain = await ctx.prompter.input('Domain (optional, Enter to skip)', { validate: check(n.normaliseDomain) });
    if (domain.trim() !== '') raw.domain = domain;
  }
  if (missing(raw.country)) {
    const country = await ctx.prompter.input('Country, ISO code or English name such as Germany (optional, Enter to skip)', { validate: check(n.normaliseCountry) });
    if (country.trim() !== '') {
      raw.country = n.normaliseCountry(country);
      if (raw.country !== country.trim()) ctx.notice(`country: ${raw.country}`);
    }
  }
}
