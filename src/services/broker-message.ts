// Inbound broker messages: {"op": "upsert" | "delete", "key": "domain" | "lei" |
// "registration" | "external:<source>", "company": {...}}. An upsert's company is validated
// exactly as `company create` validates (the import's compiled validator, proven equal to it);
// a delete needs only the key's fields. Pure: no I/O.
import { INPUT_FIELDS, type CompanyInput } from '../domain/company.js';
import { parseCompanyPatch } from '../domain/validate.js';
import { CompanyctlError, ValidationError } from '../errors.js';
import type { RowValidator } from './import/validate.js';

export type InboundKey =
  | { kind: 'domain'; domain: string }
  | { kind: 'lei'; lei: string }
  | { kind: 'registration'; country: string; number: string }
  | { kind: 'external'; source: string; id: string };

export interface InboundMessage {
  messageId: string;
  op: 'upsert' | 'delete';
  key: InboundKey;
  /** upsert: the whole record as `company create` would store it. */
  input?: CompanyInput;
  /** upsert: only the fields the message holds (an existing company keeps the others). */
  patch?: Partial<CompanyInput>;
}

/** Why a message is refused: dead-lettered with these in its headers. */
export class InvalidMessage extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

const TOP = new Set(['op', 'key', 'company']);
const KNOWN_FIELDS = new Set<string>(INPUT_FIELDS);
const SOURCE = /^[a-z0-9][a-z0-9._-]{0,31}$/;

export function parseInboundMessage(
  content: Buffer,
  props: { messageId?: unknown; contentType?: unknown; contentEncoding?: unknown },
  validate: RowValidator,
): InboundMessage {
  const messageId = typeof props.messageId === 'string' ? props.messageId.trim() : '';
  if (!messageId || messageId.length > 255) {
    throw new InvalidMessage('the message has no message-id property (1 to 255 characters); redeliveries are dropped by it', 'COMPANYCTL_MISSING_FIELD', 'message-id');
  }
  const type = typeof props.contentType === 'string' ? props.contentType.split(';')[0]!.trim().toLowerCase() : '';
  if (type && type !== 'application/json') throw new InvalidMessage(`content-type ${JSON.stringify(type)} is not application/json`, 'COMPANYCTL_INVALID_INPUT', 'content-type');
  if (props.contentEncoding) throw new InvalidMessage('content-encoding is not supported (send plain UTF-8 JSON)', 'COMPANYCTL_INVALID_INPUT', 'content-encoding');
  let body: unknown;
  try {
    body = JSON.parse(content.toString('utf8').replace(/^\uFEFF/, ''));
  } catch (e) {
    throw new InvalidMessage(`the body is not valid JSON: ${(e as Error).message}`, 'COMPANYCTL_INVALID_INPUT', 'body');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidMessage('the body must be a JSON object with op, key and company', 'COMPANYCTL_INVALID_INPUT', 'body');
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).filter((k) => !TOP.has(k));
  if (unknown.length > 0) throw new InvalidMessage(`unknown field ${unknown.join(', ')} (known: op, key, company)`, 'COMPANYCTL_INVALID_INPUT', unknown[0]);
  if (b.op !== 'upsert' && b.op !== 'delete') throw new InvalidMessage(`op must be "upsert" or "delete", not ${JSON.stringify(b.op)}`, 'COMPANYCTL_INVALID_INPUT', 'op');
  const keySpec = typeof b.key === 'string' ? b.key : '';
  const external = /^external:(.+)$/.exec(keySpec)?.[1];
  if (!['domain', 'lei', 'registration'].includes(keySpec) && !(external && SOURCE.test(external))) {
    throw new InvalidMessage(`key must be domain, lei, registration or external:<source>, not ${JSON.stringify(b.key)}`, 'COMPANYCTL_INVALID_INPUT', 'key');
  }
  const raw = b.company;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new InvalidMessage('company must be a JSON object of company fields', 'COMPANYCTL_INVALID_INPUT', 'company');
  const fields = raw as Record<string, unknown>;
  // The compiled validator reads known fields only; company create refuses the others by name.
  const extra = Object.keys(fields).filter((k) => !KNOWN_FIELDS.has(k));
  if (extra.length > 0) throw new InvalidMessage(`company.${extra.join(', ')}: unknown field (known fields: ${INPUT_FIELDS.join(', ')})`, 'COMPANYCTL_INVALID_INPUT', `company.${extra[0]}`);

  let input: CompanyInput | undefined;
  let values: Partial<CompanyInput>;
  try {
    if (b.op === 'upsert') {
      input = validate(fields);
      values = input;
    } else {
      values = parseCompanyPatch(fields);
    }
  } catch (e) {
    if (e instanceof ValidationError) throw new InvalidMessage(`company.${e.message}`, e.code, `company.${e.field ?? 'input'}`);
    if (e instanceof CompanyctlError) throw new InvalidMessage(e.message, e.code, e.field);
    throw e;
  }
  const key = keyOf(keySpec, external, values);
  if (!input) return { messageId, op: 'delete', key };
  const patch: Partial<CompanyInput> = {};
  for (const k of Object.keys(fields) as (keyof CompanyInput)[]) (patch as Record<string, unknown>)[k] = input[k];
  return { messageId, op: 'upsert', key, input, patch };
}

function keyOf(spec: string, externalSource: string | undefined, v: Partial<CompanyInput>): InboundKey {
  const missing = (field: string) => new InvalidMessage(`company.${field} is required: it is the message's key`, 'COMPANYCTL_MISSING_FIELD', `company.${field}`);
  if (externalSource) {
    const id = v.externalIds?.find((e) => e.source === externalSource)?.id;
    if (!id) throw missing(`externalIds (an id for ${externalSource})`);
    return { kind: 'external', source: externalSource, id };
  }
  if (spec === 'domain') {
    if (!v.domain) throw missing('domain');
    return { kind: 'domain', domain: v.domain };
  }
  if (spec === 'lei') {
    if (!v.lei) throw missing('lei');
    return { kind: 'lei', lei: v.lei };
  }
  if (!v.registrationCountry) throw missing('registrationCountry');
  if (!v.registrationNumber) throw missing('registrationNumber');
  return { kind: 'registration', country: v.registrationCountry, number: v.registrationNumber };
}
