// The source stage: an import's input as text. A file or stdin, gzip by its magic bytes, the
// text encoding (BOM-detected UTF-8 / UTF-16, else --encoding, UTF-8 by default and checked
// strictly), and a peek at the first text for sniffing the format.
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { CompanyctlError } from '../../errors.js';
import type { ImportJob, InputPrefix } from '../../infra/db/import-jobs.js';

export interface InputStats {
  /** Bytes read from the source (compressed bytes for .gz). */
  bytes: number;
  /** Size of the source file, when it is a file. */
  total?: number;
}

const invalid = (message: string, field: string, hint?: string) => new CompanyctlError('COMPANYCTL_INVALID_INPUT', message, { field, hint });

/** sha256 of a file's bytes, streamed. */
export async function fileChecksum(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const b of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(b as Buffer);
  return h.digest('hex');
}

/** A folder's input files (every *.json and *.json.gz in it, by name), or undefined for a file or stdin. */
export function inputFiles(path: string): string[] | undefined {
  if (path === '-') return undefined;
  try {
    if (!statSync(path).isDirectory()) return undefined;
  } catch {
    return undefined;
  }
  const files = readdirSync(path)
    .filter((f) => /\.json(\.gz)?$/i.test(f) && statSync(join(path, f)).isFile())
    .sort()
    .map((f) => join(path, f));
  if (files.length === 0) throw new CompanyctlError('COMPANYCTL_USAGE', `${path} is a folder with no *.json files to import`, { field: 'file' });
  return files;
}

/** sha256 of the input: a file's bytes, or a folder's file names and their checksums. */
export async function inputChecksum(path: string): Promise<string> {
  const files = inputFiles(path);
  if (!files) return fileChecksum(path);
  const h = createHash('sha256');
  for (const f of files) h.update(`${f.slice(path.length)}\u0000${await fileChecksum(f)}\n`);
  return h.digest('hex');
}

export function sourceSize(path: string): number | undefined {
  if (path === '-') return undefined;
  try {
    const files = inputFiles(path);
    return files ? files.reduce((n, f) => n + statSync(f).size, 0) : statSync(path).size;
  } catch {
    return undefined;
  }
}

export function openSourceBytes(path: string, stdin: NodeJS.ReadableStream): AsyncIterable<Buffer> {
  if (path === '-') return stdin as AsyncIterable<Buffer>;
  try {
    statSync(path);
  } catch (e) {
    throw new CompanyctlError('COMPANYCTL_USAGE', `cannot read ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`, {
      field: 'file',
    });
  }
  // 32 KiB reads: each decoded chunk (and the cells papaparse slices out of it) stays under V8's
  // large-object size, so it dies young in the reader's new space instead of piling up in its
  // old generation until a full collection (1M rows: reader heap 48 -> 36 MB, re-run 10.2 -> 8.4 s).
  return createReadStream(path, { highWaterMark: 1 << 15 }) as AsyncIterable<Buffer>;
}

/**
 * The sha256 of a streamed input (stdin, a pipe) as it is read: its digest so far (each
 * checkpoint keeps one), and on resume the proof that the new input starts with the bytes the
 * committed rows came from: a different prefix is refused before a row is written.
 */
export class StreamHash {
  private readonly h = createHash('sha256');
  bytes = 0;
  /** True once the expected prefix was read and matched (or when there is none to check). */
  prefixOk: boolean;

  constructor(private readonly expected?: InputPrefix) {
    this.prefixOk = !expected || expected.bytes === 0;
  }

  update(b: Buffer): void {
    const want = this.expected?.bytes ?? 0;
    if (!this.prefixOk && this.bytes + b.length >= want) {
      const cut = want - this.bytes;
      this.h.update(b.subarray(0, cut));
      if (this.h.copy().digest('hex') !== this.expected!.sha256) throw inputChanged(`its first ${want} bytes differ`);
      this.prefixOk = true;
      this.h.update(b.subarray(cut));
    } else {
      this.h.update(b);
    }
    this.bytes += b.length;
  }

  snapshot(): InputPrefix {
    return { bytes: this.bytes, sha256: this.h.copy().digest('hex') };
  }

  /** The whole input's sha256; throws if it ended before the expected prefix. */
  end(): string {
    if (!this.prefixOk) throw inputChanged(`it has ${this.bytes} bytes, fewer than the ${this.expected!.bytes} the job had read`);
    return this.h.digest('hex');
  }
}

function inputChanged(why: string): CompanyctlError {
  return new CompanyctlError('COMPANYCTL_IMPORT_INPUT_CHANGED', `this is not the input the job started with (${why}); nothing was written`, {
    hint: 'resume with the same input, or start a new import of this one',
    field: '--input',
  });
}

/** A job that read a stream (stdin, a pipe): resumable only by proving its input's prefix. */
export function isStreamedJob(job: ImportJob): boolean {
  return job.source === '-' || (job.options as { streamed?: boolean }).streamed === true;
}

/** Whether `path` is a regular file or a folder (checksummed up front); pipes, /dev/fd/N and devices are streamed like stdin. */
export function isFileOrFolder(path: string): boolean {
  if (path === '-') return false;
  try {
    const st = statSync(path);
    return st.isFile() || st.isDirectory();
  } catch {
    return true; // missing: the open reports it
  }
}

/** A gzip input may expand this many times its compressed size (text compresses 5-20x; a bomb 1000x)... */
export const MAX_GZIP_RATIO = 100;
/** ...once it has expanded past this much: small inputs are never refused. */
const GZIP_RATIO_FLOOR = 64 << 20;

/** Raw bytes -> decompressed bytes (gzip detected by its magic number), counting raw bytes. */
async function* decompressed(src: AsyncIterable<Buffer>, stats: InputStats, hash?: StreamHash, maxRatio = MAX_GZIP_RATIO): AsyncGenerator<Buffer> {
  const it = src[Symbol.asyncIterator]();
  let first = await it.next();
  while (!first.done && first.value.length === 0) first = await it.next();
  if (first.done) return;
  const firstBuf = Buffer.from(first.value);
  async function* counted(): AsyncGenerator<Buffer> {
    hash?.update(firstBuf);
    stats.bytes += firstBuf.length;
    yield firstBuf;
    for (let r = await it.next(); !r.done; r = await it.next()) {
      const b = Buffer.from(r.value);
      hash?.update(b);
      stats.bytes += b.length;
      yield b;
    }
  }
  if (firstBuf[0] === 0x1f && firstBuf[1] === 0x8b) {
    const gunzip = createGunzip();
    const input = Readable.from(counted());
    input.on('error', (e) => gunzip.destroy(e));
    input.pipe(gunzip);
    let out = 0;
    try {
      for await (const b of gunzip) {
        out += (b as Buffer).length;
        if (maxRatio > 0 && out > GZIP_RATIO_FLOOR && out > maxRatio * stats.bytes) {
          throw invalid(
            `the gzip input expands to more than ${maxRatio} times its size (${out} bytes from ${stats.bytes}); refusing what looks like a decompression bomb`,
            '--max-gzip-ratio',
            'if the file is genuine, raise the limit with --max-gzip-ratio <n> (0: no limit)',
          );
        }
        yield b as Buffer;
      }
    } catch (e) {
      if (e instanceof CompanyctlError) throw e;
      throw invalid(`the gzip input is damaged: ${(e as Error).message}`, 'file');
    }
    return;
  }
  yield* counted();
}

export interface DecodedInput {
  encoding: string;
  /** --encoding auto: what the bytes were taken for ("Mac Roman"). */
  detected?: string;
  text: AsyncGenerator<string>;
}

/** --encoding names an encoding iconv-lite knows (checked by the command before any job exists, and here). */
export async function checkEncoding(encoding: string | undefined): Promise<void> {
  const { default: iconv } = await import('iconv-lite');
  const auto = encoding?.trim().toLowerCase() === 'auto';
  if (encoding !== undefined && !auto && !iconv.encodingExists(encoding)) {
    throw new CompanyctlError('COMPANYCTL_USAGE', `--encoding: ${JSON.stringify(encoding)} is not an encoding this companyctl knows`, {
      field: '--encoding',
      hint: 'e.g. auto (detect it), utf-8, utf-16le, windows-1252, latin1, iso-8859-15, macintosh, cp850',
    });
  }
}

/**
 * Bytes -> text. A BOM decides UTF-8 / UTF-16; otherwise `encoding` (default UTF-8, strict),
 * or with "auto" the encoding the first bytes look like (text-encoding.ts).
 */
export async function decode(src: AsyncIterable<Buffer>, stats: InputStats, encoding: string | undefined, hash?: StreamHash, maxGzipRatio?: number): Promise<DecodedInput> {
  const { default: iconv } = await import('iconv-lite');
  await checkEncoding(encoding);
  const auto = encoding?.trim().toLowerCase() === 'auto';
  const bytes = decompressed(src, stats, hash, maxGzipRatio);
  const head = await bytes.next();
  const first = head.done ? Buffer.alloc(0) : head.value;
  let enc = (encoding ?? 'utf-8').toLowerCase();
  let skip = 0;
  let bom = true;
  if (first[0] === 0xef && first[1] === 0xbb && first[2] === 0xbf) [enc, skip] = ['utf-8', 3];
  else if (first[0] === 0xff && first[1] === 0xfe) [enc, skip] = ['utf-16le', 2];
  else if (first[0] === 0xfe && first[1] === 0xff) [enc, skip] = ['utf-16be', 2];
  else bom = false;
  // The bytes read ahead (the first chunk, and with auto enough to judge the encoding by).
  const ahead: Buffer[] = head.done ? [] : [first.subarray(skip)];
  let detected: string | undefined;
  if (auto && !bom) {
    const { detectEncoding, SAMPLE_BYTES } = await import('./text-encoding.js');
    let size = first.length;
    let done = !!head.done;
    while (size < SAMPLE_BYTES && !done) {
      const r = await bytes.next();
      if (r.done) done = true;
      else {
        ahead.push(r.value);
        size += r.value.length;
      }
    }
    const guess = await detectEncoding(Buffer.concat(ahead).subarray(0, SAMPLE_BYTES), done);
    [enc, detected] = [guess.encoding, guess.label];
  } else if (auto) {
    detected = enc === 'utf-8' ? 'UTF-8 (byte-order mark)' : `${enc.toUpperCase()} (byte-order mark)`;
  }
  const isUtf8 = enc === 'utf-8' || enc === 'utf8';

  async function* text(): AsyncGenerator<string> {
    let offset = 0;
    const chunks = (async function* () {
      yield* ahead;
      yield* bytes;
    })();
    if (isUtf8) {
      const dec = new TextDecoder('utf-8', { fatal: true });
      for await (const b of chunks) {
        let s: string;
        try {
          s = dec.decode(b, { stream: true });
        } catch {
          throw await notUtf8(offset, b);
        }
        if (s) yield s;
        offset += b.length;
      }
      let s: string;
      try {
        s = dec.decode();
      } catch {
        throw await notUtf8(offset, Buffer.alloc(0));
      }
      if (s) yield s;
      return;
    }
    const dec = iconv.getDecoder(enc);
    for await (const b of chunks) {
      const s = dec.write(b);
      if (s) yield s;
    }
    const s = dec.end();
    if (s) yield s;
  }
  return { encoding: isUtf8 ? 'utf-8' : enc, detected, text: text() };
}

/** The not-UTF-8 error, naming the bad byte and the encoding the bytes around it look like. */
async function notUtf8(offset: number, chunk: Buffer): Promise<CompanyctlError> {
  // Find the first bad byte of the chunk for the message (cheap: only on failure).
  let at = 0;
  for (let i = 1; i <= chunk.length; i++) {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(chunk.subarray(0, i), { stream: true });
    } catch {
      at = i - 1;
      break;
    }
  }
  const { detectEncoding } = await import('./text-encoding.js');
  const guess = chunk.length > 0 ? await detectEncoding(chunk, false) : undefined;
  if (!guess || guess.encoding === 'utf-8') {
    return invalid(`the input is not valid UTF-8 (byte ${offset + at + 1})`, '--encoding', "pass the file's encoding, e.g. --encoding windows-1252, or --encoding auto to detect it");
  }
  return invalid(`the input is not valid UTF-8 (byte ${offset + at + 1}); it looks like ${guess.label}`, '--encoding', `pass --encoding ${guess.encoding} (or --encoding auto to detect it)`);
}

/** Peek the first text chunk without losing it. */
export async function peekText(text: AsyncGenerator<string>): Promise<{ head: string; text: AsyncGenerator<string> }> {
  let head = '';
  const buffered: string[] = [];
  while (head.trim().length === 0) {
    const r = await text.next();
    if (r.done) break;
    buffered.push(r.value);
    head += r.value;
  }
  return {
    head,
    text: (async function* () {
      yield* buffered;
      yield* text;
    })(),
  };
}
