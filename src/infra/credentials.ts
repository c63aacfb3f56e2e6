// Where a login token is kept: the OS keychain (Secret Service on Linux, pinned so that a
// missing keychain is an error, never a silent write to kernel memory), or, by explicit
// opt-in, a 0600 file in a 0700 folder. Every keychain call has a 3 s timeout, so a hung
// D-Bus never hangs a cron job.
import { chmodSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CompanyctlError } from '../errors.js';
import { ensurePrivateDir } from './paths.js';

const SERVICE = 'companyctl';
export const KEYCHAIN_TIMEOUT_MS = 3000;

export interface CredentialSlot {
  /** The keychain account: profile and store, so several profiles and stores coexist. */
  account: string;
  /** The file used with --insecure-storage. */
  file: string;
}

export function credentialSlot(configDir: string, profile: string, storeKey: string): CredentialSlot {
  // The profile becomes part of a file name and a keychain account: a plain name only.
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(profile)) {
    throw new CompanyctlError('COMPANYCTL_USAGE', `--profile: ${JSON.stringify(profile)} must be 1-64 letters, digits, . _ - (starting with a letter or digit)`, {
      field: '--profile',
    });
  }
  const account = `${profile}@${storeKey}`;
  return { account, file: join(configDir, 'credentials', `${account}.token`) };
}

// The keychain library connects to D-Bus synchronously, and a blocked native call can neither
// be abandoned nor outlived (process.exit waits for it). So each call runs in a short-lived
// child process that is killed when it overruns: ~60 ms, paid only when the keychain is used.
const CHILD = `
const { AsyncEntry } = require(process.argv[1]);
let input = '';
process.stdin.on('data', (d) => (input += d)).on('end', async () => {
  const { op, service, account, secret } = JSON.parse(input);
  try {
    const e = new AsyncEntry(service, account, { linux: { store: 'secret-service' } });
    const value = op === 'get' ? await e.getPassword() : op === 'set' ? await e.setPassword(secret) : await e.deletePassword();
    process.stdout.write(JSON.stringify({ ok: true, value: value ?? null }));
  } catch (err) {
    process.stdout.write(JSON.stringify({ ok: false, error: String((err && err.message) || err).split('\\n')[0] }));
  }
});`;

async function call(op: 'get' | 'set' | 'delete', account: string, secret?: string): Promise<unknown> {
  const { spawn } = await import('node:child_process');
  const { createRequire } = await import('node:module');
  const lib = createRequire(import.meta.url).resolve('@napi-rs/keyring');
  return new Promise((resolve, reject) => {
    // The secret travels on stdin, never in argv.
    const child = spawn(process.execPath, ['-e', CHILD, lib], { stdio: ['pipe', 'pipe', 'ignore'] });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new CompanyctlError('COMPANYCTL_KEYCHAIN_TIMEOUT', `the OS keychain did not answer within ${KEYCHAIN_TIMEOUT_MS / 1000} s (${op})`, {
          hint: 'check that the Secret Service (gnome-keyring, KeePassXC) runs and is unlocked; in cron or CI use COMPANYCTL_TOKEN',
        }),
      );
    }, KEYCHAIN_TIMEOUT_MS);
    child.stdout.on('data', (d) => (out += d));
    child.on('error', (e) => (clearTimeout(timer), reject(unavailable(e))));
    child.on('close', () => {
      clearTimeout(timer);
      let r: { ok: boolean; value?: unknown; error?: string };
      try {
        r = JSON.parse(out);
      } catch {
        return reject(unavailable(new Error('the keychain helper gave no answer')));
      }
      if (r.ok) resolve(r.value);
      else reject(unavailable(new Error(r.error)));
    });
    child.stdin.end(JSON.stringify({ op, service: SERVICE, account, secret }));
  });
}

function unavailable(e: unknown): CompanyctlError {
  const reason = String((e as Error)?.message ?? e).split('\n')[0];
  return new CompanyctlError('COMPANYCTL_KEYCHAIN_UNAVAILABLE', `no OS keychain is reachable (${reason})`, {
    hint: 'on a headless server use "companyctl login --insecure-storage" (a 0600 file) or COMPANYCTL_TOKEN',
    cause: e,
  });
}

export const keychain = {
  /** null means "absent or locked" (the library's contract on a locked collection). */
  get: async (slot: CredentialSlot): Promise<string | null> => ((await call('get', slot.account)) as string | null) ?? null,
  set: async (slot: CredentialSlot, token: string): Promise<void> => void (await call('set', slot.account, token)),
  delete: async (slot: CredentialSlot): Promise<boolean> => Boolean(await call('delete', slot.account)),
};

export const tokenFile = {
  /** The stored token; a file others can read is refused unless `allowInsecure` (logout must still work). */
  get(slot: CredentialSlot, opts: { allowInsecure?: boolean } = {}): string | null {
    if (!existsSync(slot.file)) return null;
    const mode = statSync(slot.file).mode & 0o777;
    if (mode & 0o077 && !opts.allowInsecure) {
      throw new CompanyctlError('COMPANYCTL_AUTH_INSECURE_FILE', `refusing the token file ${slot.file}: others can read it (mode ${mode.toString(8)})`, {
        hint: `run "chmod 600 ${slot.file}", or log in again`,
      });
    }
    return readFileSync(slot.file, 'utf8').trim() || null;
  },
  set(slot: CredentialSlot, token: string): void {
    ensurePrivateDir(join(slot.file, '..'));
    rmSync(slot.file, { force: true });
    writeFileSync(slot.file, `${token}\n`, { mode: 0o600 });
    chmodSync(slot.file, 0o600);
  },
  delete(slot: CredentialSlot): boolean {
    if (!existsSync(slot.file)) return false;
    rmSync(slot.file, { force: true });
    return true;
  },
};

export type TokenSource = 'environment' | 'keychain' | 'file';

/**
 * The token to use: COMPANYCTL_TOKEN wins, then the opt-in file (a cheap stat; login keeps
 * only one of file and keychain), then the keychain. An unreachable keychain is skipped
 * (there is simply no token); a keychain that hangs is an error, never a wait.
 */
export async function findToken(env: Record<string, string | undefined>, slot: CredentialSlot): Promise<{ token: string; source: TokenSource } | undefined> {
  if (env.COMPANYCTL_TOKEN !== undefined) {
    const fromEnv = env.COMPANYCTL_TOKEN.trim();
    if (fromEnv) return { token: fromEnv, source: 'environment' };
    // `COMPANYCTL_TOKEN=$(cat missing.token)` must not fall back to whoever logged in here.
    throw new CompanyctlError('COMPANYCTL_AUTH_INVALID', 'COMPANYCTL_TOKEN is set but empty', {
      hint: 'set it to an API token ("companyctl token create"), or unset it to use your login',
      field: 'COMPANYCTL_TOKEN',
    });
  }
  const fromFile = tokenFile.get(slot);
  if (fromFile) return { token: fromFile, source: 'file' };
  try {
    const fromKeychain = await keychain.get(slot);
    if (fromKeychain) return { token: fromKeychain, source: 'keychain' };
  } catch (e) {
    if ((e as CompanyctlError).code !== 'COMPANYCTL_KEYCHAIN_UNAVAILABLE') throw e;
  }
  return undefined;
}
