// An import that reads a stream (stdin, a pipe) cannot checksum its input up front: each
// checkpoint keeps the length and sha256 of the input bytes read so far, and a resume proves
// its new input starts with the same bytes before writing anything.
const common = (bigint: string) => [
  `alter table import_job add column input_prefix_bytes ${bigint}`,
  `alter table import_job add column input_prefix_sha256 text`,
];

export const importInputPrefixSqlite = common('integer');
export const importInputPrefixPostgresql = common('bigint');
