// Where a login token is kept: the OS keychain (Secret Service on Linux, pinned so that a
// missing keychain is an error, never a silent write to kernel memory), or, by explicit
// opt-in, a 0600 file in a 0700 folder. Every keychain call has a timeout, so a hung D-Bus
// never hangs a cron job.
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
  const account = `${profile}@${storeKey}`;
  return { account, file: join(configDir, 'credentials', `${account}.token`) };
}

/** Set when a keychain call timed out: the entry point then exits without waiting for it. */
export let keychainHung = false;

async function withTimeout<T>(what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      keychainHung = true;
      ac.abort();
      reject(
        new CompanyctlError('COMPANYCTL_KEYCHAIN_TIMEOUT', `the OS keychain did not answer within ${KEYCHAIN_TIMEOUT_MS / 1000} s (${what})`, {
          hint: 'check that the Secret Service (gnome-keyring, KeePassXC) runs and is unlocked; in cron or CI use COMPANYCTL_TOKEN',
        }),
      );
    }, KEYCHAIN_TIMEOUT_MS);
    timer.unref();
  });
  try {
    return await Promise.race([fn(ac.signal), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function entry(account: string) {
  const { AsyncEntry } = await import('@napi-rs/keyring');
  try {
    return new AsyncEntry(SERVICE, account, { linux: { store: 'secret-service' } } as never);
  } catch (e) {
    throw unavailable(e);
  }
}

function unavailable(e: unknown): CompanyctlError {
  const reason = String((e as Error)?.message ?? e).split('\n')[0];
  return new CompanyctlError('COMPANYCTL_KEYCHAIN_UNAVAILABLE', `no OS keychain is reachable (${reason})`, {
    hint: 'on a headless server use "companyctl login --insecure-storage" (a 0600 file) or COMPANYCTL_TOKEN',
    cause: e,
  });
}

export const keychain = {
  async get(slot: CredentialSlot): Promise<string | null> {
    const e = await entry(slot.account);
    // null means "absent or locked" (the library's contract on a locked collection).
    return withTimeout('read', (signal) => e.getPassword(signal)).catch((err) => {
      if (err instanceof CompanyctlError) throw err;
      throw unavailable(err);
    });
  },
  async set(slot: CredentialSlot, token: string): Promise<void> {
    const e = await entry(slot.account);
    await withTimeout('write', (signal) => e.setPassword(token, signal)).catch((err) => {
      if (err instanceof CompanyctlError) throw err;
      throw unavailable(err);
    });
  },
  async delete(slot: CredentialSlot): Promise<boolean> {
    const e = await entry(slot.account);
    return withTimeout('delete', (signal) => e.deletePassword(signal)).catch((err) => {
      if (err instanceof CompanyctlError) throw err;
      throw unavailable(err);
    });
  },
};

export const tokenFile = {
  get(slot: CredentialSlot): string | null {
    if (!existsSync(slot.file)) return null;
    const mode = statSync(slot.file).mode & 0o777;
    if (mode & 0o077) {
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
 * The token to use: COMPANYCTL_TOKEN wins, then the keychain, then the opt-in file.
 * An unreachable keychain is skipped here (the file may still hold a token); a keychain
 * that hangs is an error, never a wait.
 */
export async function findToken(env: Record<string, string | undefined>, slot: CredentialSlot): Promise<{ token: string; source: TokenSource } | undefined> {
  const fromEnv = env.COMPANYCTL_TOKEN?.trim();
  if (fromEnv) return { token: fromEnv, source: 'environment' };
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
