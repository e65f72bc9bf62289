import { resolve } from 'node:path';
import { segmentDir } from '../server/config.ts';
import { writeSegmentSetOffline } from '../server/segment-set.ts';
import { withDirectoryLock } from '../server/writer-lock.ts';
import { BulkError, EXIT } from './errors.ts';

/**
 * Runs `work` on a data directory's database holding the writer's lock, as `haarseek
 * import` does: refused (exit 2) while a writer or a cluster runs there. Readers that
 * run meanwhile see the work through the change log. Losing the lock midway (another
 * process judged it stale) aborts the signal: the work stops before its next commit.
 */
export function withWriterLock<T>(dataDir: string, throughServer: string, work: (dbPath: string, lost: AbortSignal) => Promise<T>): Promise<T> {
  return withDirectoryLock(
    dataDir,
    {
      refuse: ({ holder, detail }) =>
        new BulkError(`a haarseek ${holder} is running on ${resolve(dataDir)}${detail ? ` (${detail})` : ''}; stop it first, or ${throughServer}`, EXIT.locked),
      lost: (err, dbPath) => new BulkError(`the writer lock on ${dbPath} was lost (${err.message}); stopped before the next commit`),
    },
    async (dbPath, lost) => {
      const result = await work(dbPath, lost);
      // The next start maps what was added instead of reading it from SQLite.
      writeSegmentSetOffline(dbPath, segmentDir(dataDir));
      return result;
    },
  );
}

