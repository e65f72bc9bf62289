import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import lockfile from 'proper-lockfile';
import { WriterLockedError } from '../errors.ts';
import { databasePath } from './config.ts';

export interface LockHolder {
  pid: number;
  port: number;
  since: string;
}


/**
 * The single-writer lock: proper-lockfile's `<db>.lock` directory, plus a small file
 * naming the holder so a refused second writer can say who has it. A lock left by a
 * writer that was killed (its pid is gone) is taken over at once instead of waiting
 * for it to go stale.
 */
export async function acquireWriterLock(dbPath: string, port: number, onCompromised: (err: Error) => void): Promise<() => Promise<void>> {
  const holderPath = `${dbPath}.writer.json`;
  const options = { realpath: false, stale: 10_000, update: 2_000, onCompromised };
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(dbPath, options);
  } catch (err) {
    if ((err as { code?: string }).code !== 'ELOCKED') throw err;
    const holder = readHolder(holderPath);
    if (holder && !isAlive(holder.pid)) {
      rmSync(`${dbPath}.lock`, { recursive: true, force: true });
      release = await lockfile.lock(dbPath, options);
    } else {
      const who = holder ? `pid ${holder.pid}, port ${holder.port}, since ${holder.since}` : 'holder unknown';
      throw new WriterLockedError(`another writer holds the lock ${dbPath}.lock (${who}); only one writer may open a database`);
    }
  }
  const holder: LockHolder = { pid: process.pid, port, since: new Date().toISOString() };
  writeFileSync(holderPath, JSON.stringify(holder));
  return async () => {
    rmSync(holderPath, { force: true });
    await release();
  };
}

function readHolder(path: string): LockHolder | null {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as LockHolder;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

/** Why a command could not take a data directory: a cluster or a writer runs there. */
export interface DirectoryRefusal {
  holder: 'cluster' | 'writer';
  /** The writer lock's own message (who holds it), for holder 'writer'. */
  detail?: string;
}

/**
 * Runs work on a data directory's database under the writer's lock, as the offline
 * commands (import, export, add --data) do: refused while a cluster or a writer runs
 * there (refuse builds the error to throw). Losing the lock midway (another process
 * judged it stale) aborts the signal with the error errors.lost builds.
 */
export async function withDirectoryLock<T>(
  dataDir: string,
  errors: { refuse(why: DirectoryRefusal): Error; lost(err: Error, dbPath: string): Error },
  work: (dbPath: string, lost: AbortSignal) => Promise<T>,
): Promise<T> {
  const dir = resolve(dataDir);
  const dbPath = databasePath(dir);
  mkdirSync(dir, { recursive: true });
  let clusterRuns = false;
  try {
    clusterRuns = await lockfile.check(dir, { realpath: false, lockfilePath: `${join(dir, 'cluster')}.lock`, stale: 10_000 });
  } catch {
    clusterRuns = false;
  }
  if (clusterRuns) throw errors.refuse({ holder: 'cluster' });
  const lost = new AbortController();
  let release: () => Promise<void>;
  try {
    release = await acquireWriterLock(dbPath, 0, (err) => lost.abort(errors.lost(err, dbPath)));
  } catch (err) {
    if (err instanceof WriterLockedError) throw errors.refuse({ holder: 'writer', detail: err.message });
    throw err;
  }
  try {
    return await work(dbPath, lost.signal);
  } finally {
    await release();
  }
}
