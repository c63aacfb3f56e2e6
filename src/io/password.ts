// Passwords never travel in argv: a prompt with echo off on a terminal, or --password-stdin.
import type { Context } from '../context.js';
import { CompanyctlError } from '../errors.js';
import { missingAnswer } from './prompter.js';

/** The rules a new password must meet, shown before the prompt, and a check that names the one broken. */
export interface PasswordRules {
  text: string;
  check(pw: string): string | undefined;
}

export async function readPassword(ctx: Context, opts: { fromStdin?: boolean; confirm?: boolean; prompt?: string; rules?: PasswordRules }): Promise<string> {
  if (opts.fromStdin) {
    const chunks: Buffer[] = [];
    for await (const chunk of ctx.io.stdin) chunks.push(Buffer.from(chunk as Buffer));
    // One trailing newline is the shell's, not the password's.
    const pw = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
    if (pw === '') throw new CompanyctlError('COMPANYCTL_MISSING_FIELD', '--password-stdin: stdin was empty', { field: '--password-stdin' });
    return pw;
  }
  if (!ctx.prompter.canPrompt) throw missingAnswer('--password-stdin', 'a password');
  const rules = opts.rules;
  // Each answer is checked as it is typed and asked again: never a refusal after the last prompt.
  const pw = await ctx.prompter.password(`${opts.prompt ?? 'Password'}${rules ? ` (${rules.text})` : ''}`, rules ? { validate: (v) => rules.check(v) ?? true } : {});
  if (opts.confirm) {
    await ctx.prompter.password('Repeat the password', { validate: (v) => (v === pw ? true : 'the two passwords differ; type the same one again') });
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
