// The import engine's public entry points. A run goes through its stages in this folder:
//   source.ts (bytes -> text) -> parse.ts (records, per formats.ts) -> read.ts (map, validate,
//   chunk; on a worker thread via reader.ts) -> plan.ts / write.ts (one transaction a chunk,
//   driven by execute.ts) -> finish.ts (job state, summary event);
// job.ts and lock.ts own the job row and its run lock, dry-run.ts the run that writes nothing.
export { runImport, resumeImport, listImportJobs, getImportJob } from './job.js';
export { silentProgress, type ImportDeps, type ImportOptions, type ImportProgress, type ImportSummary, type MaxErrors } from './types.js';
export { IMPORT_KEYS, describeImportKey, type ImportKey } from './rows.js';
export { FORMAT_NAMES, type InputFormat } from './formats.js';
export { CompanyBitmap } from './duplicates.js';
