import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type Database from 'better-sqlite3';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULTS, databasePath, segmentDir } from '../server/config.ts';
import { ImportError } from './errors.ts';

// The readers, writers, SQLite and the lock are loaded when a command runs, not for
// every `haarseek` start.

/** Exit code when the data directory is in use (as `haarseek serve` uses for a held lock). */
const EXIT_LOCKED = 2;

class DirectoryBusyError extends Error {
  override name = 'DirectoryBusyError';
}

function parseSpaceId(value: string): number {
  const n = Number(value);
  if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < -0x80000000 || n > 0x7fffffff) {
    throw new InvalidArgumentError('expected a database space id (a whole number)');
  }
  return n;
}

interface CommonOptions {
  data: string;
  json?: boolean;
}

/**
 * `haarseek import isk|iqdb FILE` and `haarseek export --format isk FILE`: straight on the
 * data directory, holding the writer's lock (so no writer runs meanwhile; running
 * readers see the change through the change log and reload the spaces).
 */
export function registerImportCommands(program: Command): void {
  const imp = program
    .command('import')
    .description('load another program\'s database file into the haarseek data directory (stop the writer first, or use loadDb/loadAllDbs through it)');

  imp
    .command('isk')
    .description('load an iskdaemon 0.5.1 .. 0.9.5 database file: savealldbs (its ~/isk-db, every space) or savedb (saveDbAs, one space: needs --space); each space in the file replaces the space of the same id')
    .argument('<file>', 'the iskdaemon file')
    .option('--space <n>', 'savedb file: the space to load it into; savealldbs file: load only this space', parseSpaceId)
    .option('--data <dir>', 'data directory holding haarseek.db', DEFAULTS.dataDir)
    .option('--no-keep-order', "don't remember the file's coefficient order (then an export lists coefficients sorted, not byte-identical to this file)")
    .option('--json', 'print the summary as JSON')
    .action(async (file: string, opts: CommonOptions & { space?: number; keepOrder: boolean }) => {
      await run(opts, 'import', async (db, signal) => {
        const { describeSummary, importIskAsync } = await import('./import.ts');
        const summary = await importIskAsync(db, resolve(file), { space: opts.space, keepFileOrder: opts.keepOrder }, { signal });
        return { summary, lines: describeSummary(summary) };
      });
    });

  imp
    .command('iqdb')
    .description("load danbooru/iqdb's iqdb.sqlite into one space (replacing it); iqdb keeps no image sizes (stored as 0x0) and no keywords")
    .argument('<file>', 'the iqdb SQLite database')
    .requiredOption('--space <n>', 'the space to load it into', parseSpaceId)
    .option('--data <dir>', 'data directory holding haarseek.db', DEFAULTS.dataDir)
    .option('--json', 'print the summary as JSON')
    .action(async (file: string, opts: CommonOptions & { space: number }) => {
      await run(opts, 'import', async (db, signal) => {
        const { describeSummary, importIqdbAsync } = await import('./import.ts');
        const summary = await importIqdbAsync(db, resolve(file), { space: opts.space }, { signal });
        return { summary, lines: describeSummary(summary) };
      });
    });

  program
    .command('export')
    .description('write database spaces as a file another program loads: --format isk is iskdaemon 0.9.5\'s savedb (one --space, for loadDb) or savealldbs (every space, for loadAllDbs)')
    .argument('<file>', 'the file to write (replaced atomically)')
    .addOption(new Option('--format <format>', 'file format').choices(['isk']).makeOptionMandatory())
    .option('--space <n>', 'export only this space, as savedb (default: every space, as savealldbs)', parseSpaceId)
    .option('--data <dir>', 'data directory holding haarseek.db', DEFAULTS.dataDir)
    .option('--json', 'print the summary as JSON')
    .action(async (file: string, opts: CommonOptions & { space?: number; format: 'isk' }) => {
      await run(opts, 'export', async (db, signal) => {
        const { exportIskAsync } = await import('./export.ts');
        const summary = await exportIskAsync(db, resolve(file), { space: opts.space }, { signal });
        const what = summary.format === 'isk-savedb' ? `space ${summary.spaces[0]} (savedb)` : `${summary.spaces.length} space(s) ${summary.spaces.join(', ')} (savealldbs)`;
        return { summary, lines: [`exported ${what} to ${summary.file}: ${summary.images} images, ${summary.bytes} bytes`] };
      });
    });
}

type Work<T> = (db: Database.Database, signal: AbortSignal) => Promise<T>;

async function run(opts: CommonOptions, verb: 'import' | 'export', work: Work<{ summary: object; lines: string[] }>): Promise<void> {
  const started = performance.now();
  try {
    const { summary, lines } = await withDataDirectory(opts.data, verb, work);
    const seconds = Number(((performance.now() - started) / 1000).toFixed(3));
    if (opts.json) process.stdout.write(`${JSON.stringify({ ...summary, seconds })}\n`);
    else process.stdout.write(`${lines.join('\n')}\n${verb === 'import' ? 'imported' : 'exported'} in ${seconds.toFixed(2)} s\n`);
  } catch (err) {
    process.stderr.write(`haarseek: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = err instanceof DirectoryBusyError ? EXIT_LOCKED : 1;
  }
}

/** Opens the directory's database under the writer lock, refusing while a writer or a cluster runs. */
async function withDataDirectory<T>(dataDir: string, verb: 'import' | 'export', work: Work<T>): Promise<T> {
  const dir = resolve(dataDir);
  const dbPath = databasePath(dir);
  if (verb === 'export' && !existsSync(dbPath)) throw new ImportError('space', `there is no haarseek database in ${dir} (${dbPath} does not exist)`);
  const how = verb === 'import' ? 'load the file through it (XML-RPC loadDb/loadAllDbs)' : 'export through it (XML-RPC saveDbAs/saveAllDbsAs)';
  const [{ withDirectoryLock }, { openWritable }] = await Promise.all([import('../server/writer-lock.ts'), import('../store/open.ts')]);
  // Losing the lock midway (another process judged it stale) rolls the work back.
  return withDirectoryLock(
    dir,
    {
      refuse: ({ holder, detail }) => new DirectoryBusyError(`a haarseek ${holder} is running on ${dir}${detail ? ` (${detail})` : ''}; stop it before ${verb}ing here, or ${how}`),
      lost: (err, path) => new Error(`the writer lock on ${path} was lost during the ${verb} (${err.message}); nothing was written`),
    },
    async (path, lost) => {
      const db = openWritable(path);
      let result: T;
      try {
        result = await work(db, lost);
      } finally {
        db.close();
      }
      // The next start maps the imported spaces instead of reading them from SQLite.
      if (verb === 'import') (await import('../server/segment-set.ts')).writeSegmentSetOffline(path, segmentDir(dir));
      return result;
    },
  );
}
