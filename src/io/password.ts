// Passwords never travel in argv: a prompt with echo off on a terminal, or --password-stdin.
import type { Context } from '../context.js';
import { CompanyctlError } from '../errors.js';
import { missingAnswer } from './prompter.js';

export async function readPassword(ctx: Context, opts: { fromStdin?: boolean; confirm?: boolean; prompt?: string }): Promise<string> {
  if (opts.fromStdin) {
    const chunks: Buffer[] = [];
    for await (const chunk of ctx.io.stdin) chunks.push(Buffer.from(chunk as Buffer));
    // One trailing newline is the shell's, not the password's.
    const pw = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
    if (pw === '') throw new CompanyctlError('COMPANYCTL_MISSING_FIELD', '--password-stdin: stdin was empty', { field: '--password-stdin' });
    return pw;
  }
  if (!ctx.prompter.canPrompt) throw missingAnswer('--password-stdin', 'a password');
  const pw = await ctx.prompter.password(opts.prompt ?? 'Password');
  if (opts.confirm) {
    const again = await ctx.prompter.password('Repeat the password');
    if (again !== pw) throw new CompanyctlError('COMPANYCTL_INVALID_INPUT', 'the two passwords differ', { field: 'password' });
  }
  return pw;
}

/** Two secrets from stdin, one a line (e.g. the current and the new password). */
export async function readTwoPasswordLines(ctx: Context, flag: string): Promise<[string, string]> {
  const chunks: Buffer[] = [];
  for await (const chunk of ctx.io.stdin) chunks.push(Buffer.from(chunk as Buffer));
  const lines = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '').split(/\r?\n/);
  if (lines.length !== 2 || !lines[0] || !lines[1]) {
    throw new CompanyctlError('COMPANYCTL_MISSING_FIELD', `${flag}: expected two lines on stdin, the current password then the new one`, { field: flag });
  }
  return [lines[0], lines[1]];
}
