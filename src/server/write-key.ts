import { randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The key could not be had (an empty or unreadable key file): the process does not start. */
export class WriteKeyError extends Error {
  override name = 'WriteKeyError';
}

/**
 * resolveWriteKey for a command: a key, or one line on stderr and exit code 2
 * (no stack trace for an operator to read through).
 */
export function writeKeyOrExit(dataDir: string, given: string | undefined, command: string): ReturnType<typeof resolveWriteKey> {
  try {
    return resolveWriteKey(dataDir, given);
  } catch (err) {
    process.stderr.write(`${command}: ${(err as Error).message}\n`);
    process.exit(2);
  }
}

/** Where a generated key is kept: readable by the operator's account only. */
export function writeKeyPath(dataDir: string): string {
  return join(dataDir, 'write.key');
}

/**
 * The key write and admin calls must carry: the one given (--write-key or
 * HAARSEEK_WRITE_KEY), else the data directory's write.key, created with a random key
 * (mode 0600) when missing, so a zero-config start is protected too. `generated` says
 * whether this call created it (the start banner prints a new key once).
 */
export function resolveWriteKey(dataDir: string, given: string | undefined): { key: string; generated: boolean; file?: string } {
  if (given !== undefined && given.length > 0) return { key: given, generated: false };
  const file = writeKeyPath(dataDir);
  try {
    return { key: readKey(file), generated: false, file };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const key = randomBytes(24).toString('base64url');
  try {
    writeFileSync(file, `${key}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(file, 0o600);
    return { key, generated: true, file };
  } catch (err) {
    // Another process of the cluster created it first: use theirs.
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { key: readKey(file), generated: false, file };
    throw err;
  }
}

function readKey(file: string): string {
  const key = readFileSync(file, 'utf8').trim();
  if (key.length === 0) throw new WriteKeyError(`${file} is empty: write a key into it or delete it to have one generated`);
  return key;
}

/**
 * Whether an Authorization header carries the key: `Bearer KEY`, or Basic auth with
 * the key as the password (any user name) or as the user name with no password.
 */
export function carriesKey(authorization: string | undefined, key: string): boolean {
  if (!authorization) return false;
  const [scheme, value = ''] = authorization.trim().split(/\s+/, 2);
  const candidates: string[] = [];
  if (/^bearer$/i.test(scheme)) candidates.push(value);
  else if (/^basic$/i.test(scheme)) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) candidates.push(decoded);
    else {
      candidates.push(decodeURIComponentSafe(decoded.slice(colon + 1)));
      if (colon === decoded.length - 1) candidates.push(decodeURIComponentSafe(decoded.slice(0, colon)));
    }
  }
  return candidates.some((c) => sameSecret(c, key));
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function sameSecret(given: string, key: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(key);
  return a.length === b.length && timingSafeEqual(a, b);
}
