// The company filters shared by `company list`, `export` and `enrich`: one definition, one meaning.
import type { Command } from 'commander';

export interface FilterFlags {
  name?: string;
  country?: string;
  industry?: string;
  status?: string;
  tag?: string;
  updatedSince?: string;
}

export function addFilterFlags(cmd: Command): Command {
  return cmd
    .option('--name <text>', 'name contains (case-insensitive)')
    .option('--country <code>', 'address country (ISO 3166-1 alpha-2)')
    .option('--industry <industry>', 'industry (case-insensitive)')
    .option('--status <status>', 'active, dormant or dissolved')
    .option('--tag <tag>', 'has this tag')
    .option('--updated-since <when>', 'updated at or after: a date, an ISO time, or an age such as 36h or 7d');
}
