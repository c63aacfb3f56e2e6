// The dry run: the read stage over the whole input (validation and the in-file duplicate
// check included), nothing written; rejects go to --rejects when given.
import { resolve } from 'node:path';
import { CompanyctlError } from '../../errors.js';
import { FORMATS } from './formats.js';
import { openReader, pipelineOptions } from './reader.js';
import { RejectsFile } from './rejects.js';
import { describeImportKey, type PipelineHeader } from './rows.js';
import type { ImportDeps, ImportOptions, ImportProgress, ImportSummary } from './types.js';

export async function dryRun(deps: ImportDeps, opts: ImportOptions, progress: ImportProgress, signal?: AbortSignal): Promise<ImportSummary> {
  const stopped = new Promise<undefined>((resolve) => signal?.addEventListener('abort', () => resolve(undefined), { once: true }));
  const started = Date.now();
  const src = openReader(deps, pipelineOptions(opts, 0, deps.now(), false, true));
  let header: PipelineHeader | undefined;
  let records = 0;
  let valid = 0;
  let rejected = 0;
  let rejects: RejectsFile | undefined;
  try {
    for (;;) {
      const ev = signal?.aborted ? undefined : await Promise.race([src.next(), stopped]);
      if (signal?.aborted) throw new CompanyctlError('COMPANYCTL_CANCELLED', `dry run stopped after ${records} rows; nothing was written`);
      if (!ev) break;
      if (ev.type === 'header') {
        header = ev.header;
        if (header.unknown.length) progress.notice(`ignoring unknown columns: ${header.unknown.join(', ')} (map them with --map "column=field")`);
        progress.start({ jobId: null, header, resumedFrom: 0 });
        if (opts.rejectsFile) {
          rejects = new RejectsFile(resolve(opts.rejectsFile), FORMATS[header.format].rejects);
          rejects.open(0, header.columns, { resume: false, replace: !!opts.force, input: opts.source });
        }
      } else if (ev.type === 'unknown') {
        header?.unknown.push(...ev.columns);
      } else if (ev.type === 'chunk') {
        records += ev.chunk.records;
        valid += ev.chunk.lines.length;
        rejected += ev.chunk.rejects.length;
        rejects?.write(ev.chunk.rejects);
        for (const r of ev.chunk.rejects.slice(0, Math.max(0, 20 - (rejected - ev.chunk.rejects.length)))) {
          progress.notice(`line ${r.line}: ${r.field}: ${r.reason}`);
        }
        progress.update({ records, rejected, bytes: ev.chunk.bytes });
        src.granted();
      }
    }
  } finally {
    await src.close().catch(() => undefined);
    rejects?.close();
    progress.stop();
  }
  const seconds = (Date.now() - started) / 1000;
  return {
    jobId: null,
    state: 'dry-run',
    file: opts.source,
    format: header?.format ?? 'unknown',
    encoding: header?.encoding ?? 'unknown',
    key: describeImportKey(opts.key),
    rows: records,
    inserted: 0,
    updated: 0,
    unchanged: 0,
    rejected,
    valid,
    seconds: Math.round(seconds * 1000) / 1000,
    rowsPerSecond: seconds > 0 ? Math.round(records / seconds) : records,
    rejectsFile: rejects && rejected > 0 ? rejects.path : null,
    unknownColumns: header?.unknown ?? [],
    ignoredColumns: header?.ignored ?? [],
    resumedFrom: 0,
    eventId: null,
  };
}

