// Prompts, only on a terminal. Without one, a missing answer is an error naming the flag.
import { CompanyctlError } from '../errors.js';

export interface Prompter {
  /** True when stdin and stderr are terminals (prompts are written to stderr). */
  readonly canPrompt: boolean;
  input(message: string, opts?: { required?: boolean; validate?: (v: string) => true | string }): Promise<string>;
  confirm(message: string, defaultValue?: boolean): Promise<boolean>;
  /** A secret, typed with echo off; `validate` asks again until it returns true. */
  password(message: string, opts?: { validate?: (v: string) => true | string }): Promise<string>;
}

export function missingAnswer(flag: string, what: string): CompanyctlError {
  return new CompanyctlError('COMPANYCTL_MISSING_FIELD', `${what} is required: pass ${flag}`, {
    field: flag,
    hint: 'no terminal to ask on (stdin or stderr is not a TTY)',
  });
}

export function terminalPrompter(io: { stdin: NodeJS.ReadableStream; stderr: NodeJS.WritableStream }, canPrompt: boolean): Prompter {
  const context = { input: io.stdin, output: io.stderr, clearPromptOnDone: false };
  const cancelled = (e: unknown): never => {
    if ((e as Error)?.name === 'ExitPromptError' || (e as Error)?.name === 'AbortPromptError') {
      throw new CompanyctlError('COMPANYCTL_CANCELLED', 'cancelled');
    }
    throw e;
  };
  return {
    canPrompt,
    async input(message, opts = {}) {
      const { input } = await import('@inquirer/prompts');
      return input({ message, required: opts.required, validate: opts.validate }, context).catch(cancelled);
    },
    async password(message, opts = {}) {
      const { password } = await import('@inquirer/prompts');
      return password({ message, mask: false, validate: opts.validate }, context).catch(cancelled);
    },
    async confirm(message, defaultValue = false) {
      const { confirm } = await import('@inquirer/prompts');
      return confirm({ message, default: defaultValue }, context).catch(cancelled);
    },
  };
}
