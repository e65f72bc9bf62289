import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import lockfile from 'proper-lockfile';
import { databasePath } from '../server/config.ts';
import { acquireWriterLock } from '../server/writer-lock.ts';
import { BulkError, EXIT } from './errors.ts';

/**
 * Runs `work` on a data directory's database holding the writer's lock, as `haarseek
 * import` does: refused (exit 2) while a writer or a cluster runs there. Readers that
 * run meanwhile see the work through the change log. Losing the lock midway (another
 * process judged it stale) aborts the signal: the work stops before its next commit.
 */
export async function withWriterLock<T>(dataDir: string, throughServer: string, work: (dbPath: string, lost: AbortSignal) => Promise<T>): Promise<T> {
  const dir = resolve(dataDir);
  const dbPath = databasePath(dir);
  mkdirSync(dir, { recursive: true });
  if (await clusterRunning(dir)) {
    throw new BulkError(`a haarseek cluster is running on ${dir}; stop it first, or ${throughServer}`, EXIT.locked);
  }
  const lost = new AbortController();
  let release: () => Promise<void>;
  try {
    release = await acquireWriterLock(dbPath, 0, (err) => {
      lost.abort(new BulkError(`the writer lock on ${dbPath} was lost (${err.message}); stopped before the next commit`));
    });
  } catch (err) {
    if ((err as Error).name === 'WriterLockedError') {
      throw new BulkError(`a haarseek writer is running on ${dir} (${(err as Error).message}); stop it first, or ${throughServer}`, EXIT.locked);
    }
    throw err;
  }
  try {
    return await work(dbPath, lost.signal);
  } finally {
    await release();
  }
}

/** Whether a `haarseek cluster` supervisor holds its lock on this data directory. */
async function clusterRunning(dir: string): Promise<boolean> {
  try {
    return await lockfile.check(dir, { realpath: false, lockfilePath: `${join(dir, 'cluster')}.lock`, stale: 10_000 });
  } catch {
    return false;
  }
}
