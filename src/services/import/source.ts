// The source stage: an import's input as text. A file or stdin, gzip by its magic bytes, the
// text encoding (BOM-detected UTF-8 / UTF-16, else --encoding, UTF-8 by default and checked
// strictly), and a peek at the first text for sniffing the format.
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
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


export function sourceSize(path: string): number | undefined {
  if (path === '-') return undefined;
  try {
    return statSync(path).size;
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

/** Whether `path` is a regular file (checksummed up front); pipes, /dev/fd/N and devices are streamed like stdin. */
export function isRegularFile(path: string): boolean {
  if (path === '-') return false;
  try {
    return statSync(path).isFile();
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
  text: AsyncGenerator<string>;
}

/** --encoding names an encoding iconv-lite knows (checked by the command before any job exists, and here). */
export async function checkEncoding(encoding: string | undefined): Promise<void> {
  const { default: iconv } = await import('iconv-lite');
  if (encoding !== undefined && !iconv.encodingExists(encoding)) {
    throw new CompanyctlError('COMPANYCTL_USAGE', `--encoding: ${JSON.stringify(encoding)} is not an encoding this companyctl knows`, {
      field: '--encoding',
      hint: 'e.g. utf-8, utf-16le, windows-1252, latin1, iso-8859-15, macintosh, cp850',
    });
  }
}

/** Bytes -> text. A BOM decides UTF-8 / UTF-16; otherwise `encoding` (default UTF-8, strict). */
export async function decode(src: AsyncIterable<Buffer>, stats: InputStats, encoding: string | undefined, hash?: StreamHash, maxGzipRatio?: number): Promise<DecodedInput> {
  const { default: iconv } = await import('iconv-lite');
  await checkEncoding(encoding);
  const bytes = decompressed(src, stats, hash, maxGzipRatio);
  const head = await bytes.next();
  const first = head.done ? Buffer.alloc(0) : head.value;
  let enc = (encoding ?? 'utf-8').toLowerCase();
  let skip = 0;
  if (first[0] === 0xef && first[1] === 0xbb && first[2] === 0xbf) [enc, skip] = ['utf-8', 3];
  else if (first[0] === 0xff && first[1] === 0xfe) [enc, skip] = ['utf-16le', 2];
  else if (first[0] === 0xfe && first[1] === 0xff) [enc, skip] = ['utf-16be', 2];
  const isUtf8 = enc === 'utf-8' || enc === 'utf8';

  async function* text(): AsyncGenerator<string> {
    let offset = 0;
    const chunks = (async function* () {
      if (!head.done) yield first.subarray(skip);
      yield* bytes;
    })();
    if (isUtf8) {
      const dec = new TextDecoder('utf-8', { fatal: true });
      for await (const b of chunks) {
        try {
          const s = dec.decode(b, { stream: true });
          if (s) yield s;
        } catch {
          throw notUtf8(offset, b);
        }
        offset += b.length;
      }
      try {
        const s = dec.decode();
        if (s) yield s;
      } catch {
        throw notUtf8(offset, Buffer.alloc(0));
      }
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
  return { encoding: isUtf8 ? 'utf-8' : enc, text: text() };
}

function notUtf8(offset: number, chunk: Buffer): CompanyctlError {
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
  return invalid(`the input is not valid UTF-8 (byte ${offset + at + 1})`, '--encoding', 'pass the file\'s encoding, e.g. --encoding windows-1252 (or latin1)');
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
