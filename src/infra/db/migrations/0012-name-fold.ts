// A Unicode-folded copy of non-ASCII names for `company list --name` (src/domain/name-fold.ts);
// null for ASCII names, which the query folds with lower(). Existing names are filled here.
import { nameFoldColumn } from '../../../domain/name-fold.js';
import type { Dialect } from './names.js';

type Execute = (sql: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;

export function nameFold(dialect: Dialect) {
  return async (execute: Execute): Promise<void> => {
    await execute('alter table company add column name_fold text');
    const nonAscii = dialect === 'sqlite' ? 'length(cast(name as blob)) <> length(name)' : 'octet_length(name) <> char_length(name)';
    let after = 0;
    for (;;) {
      const rows = await execute(`select id, name from company where id > ? and ${nonAscii} order by id limit 1000`, [after]);
      if (rows.length === 0) break;
      for (const r of rows) await execute('update company set name_fold = ? where id = ?', [nameFoldColumn(String(r.name)), r.id]);
      after = Number(rows[rows.length - 1]!.id);
    }
  };
}
