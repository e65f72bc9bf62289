import type { Ranking } from '../service/context.ts';
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_DECODE_LIMITS } from '../image/limits.ts';
import { DEFAULTS } from '../server/config.ts';
import { BulkError, EXIT } from './errors.ts';
import type { AddPlan, Recorder } from './add.ts';
import type { Progress } from './progress.ts';

interface AddOptions {
  space: number;
  server?: string;
  key?: string;
  data?: string;
  ids?: string;
  startId?: number;
  jobs: number;
  replace?: boolean;
  thumbnailsOnly?: boolean;
  report?: string;
  maxBytes: number;
  json?: boolean;
  progress: boolean;
}

interface QueryOptions {
  space: number;
  server?: string;
  data?: string;
  numres: number;
  ranking: Ranking;
  json?: boolean;
}

/** libuv's default thread pool, which runs sharp's decodes (and file reads) for every worker thread. */
const DEFAULT_UV_THREADS = 4;

function wholeNumber(what: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected ${what} (a whole number from ${min} to ${max === 2 ** 53 ? '2^53' : max})`);
    }
    return n;
  };
}

const spaceId = wholeNumber('a database space id', 0, 0x7fffffff);

/**
 * `haarseek add` and `haarseek query`: many image files into a space, or ranked
 * matches for image files, either through a running server or straight on a data
 * directory (add then holds the writer lock, as `haarseek import` does).
 */
export function registerAddCommand(program: Command): void {
  program
    .command('add')
    .description(
      'add image files to a database space: through a running server (--server, with the write key) or straight into a data directory with no writer running (--data); directories are walked recursively for image files (.jpg .jpeg .png .webp .gif .tif .tiff .avif), ids already in the space are skipped so an interrupted run resumes',
    )
    .argument('[paths...]', 'image files and directories (optional with --ids: then its lines are the files)')
    .requiredOption('--space <n>', 'the database space to add to (created when missing)', spaceId)
    .addOption(new Option('--server <url>', "a running server's base URL, the front's or the writer's (e.g. http://127.0.0.1:31128)").conflicts('data'))
    .option('--key <key>', 'the write key for --server (default: HAARSEEK_WRITE_KEY, or the key in the URL)')
    .option('--data <dir>', `data directory to write to straight, with no writer running (default with no --server: ${DEFAULTS.dataDir})`)
    .addOption(new Option('--ids <file.csv>', 'ids from a CSV file of "path,id" lines (relative paths from the CSV\'s folder); default: ids are the numeric file names (00042.jpg is 42)').conflicts('startId'))
    .option('--start-id <n>', 'number the files from N instead, in walk order (each directory by name, so a rerun gives the same ids)', wholeNumber('an image id', 1, 2 ** 53))
    .addOption(
      new Option('--jobs <n>', 'decodes at once with --data (worker threads), requests in flight with --server')
        .argParser(wholeNumber('a number of jobs', 1, 256))
        .default(availableParallelism(), 'the number of cores'),
    )
    .option('--replace', 'replace images whose ids the space already holds (default: skip them)')
    .option('--thumbnails-only', 'store only the thumbnails the verified ranking checks with, for images the space already holds (a database from before them, or imported from iskdaemon/iqdb); --data only')
    .option('--report <file>', 'write every file\'s outcome to FILE: CSV when it ends in .csv, JSON lines otherwise')
    .addOption(
      new Option('--max-bytes <n>', 'files larger than this many bytes fail as too large')
        .argParser(wholeNumber('a byte count', 1, 2 ** 40))
        .default(DEFAULT_DECODE_LIMITS.maxInputBytes, '32 MiB, the server\'s limit'),
    )
    .option('--json', 'print the summary as JSON')
    .option('--no-progress', 'no progress display on stderr')
    .addHelpText(
      'after',
      `\nExit status: 0 every file added or skipped; ${EXIT.someFailed} some files failed (the summary says which and why); ${EXIT.error} an error stopped the run; ${EXIT.locked} --data is in use by a writer or cluster; ${EXIT.interrupted} interrupted. What was added before a stop stays: run the same command again to go on.`,
    )
    .action(async (paths: string[], opts: AddOptions) => {
      if (opts.data === undefined && opts.server === undefined) opts.data = DEFAULTS.dataDir;
      // sharp's decodes run on libuv's thread pool, sized once per process: more decoding
      // workers than it has threads need a process started with a larger pool.
      if (opts.data !== undefined && opts.jobs + 1 > DEFAULT_UV_THREADS && process.env.UV_THREADPOOL_SIZE === undefined) {
        process.exitCode = await rerunWithThreads(opts.jobs + 2);
        return;
      }
      await addCommand(paths, opts);
    });
}

export function registerQueryCommand(program: Command): void {
  program
    .command('query')
    .description('the images of a space most similar to each image file: ranked ids and scores (0..100), through a running server (--server) or from a data directory read-only (--data)')
    .argument('<files...>', 'image files to search with')
    .requiredOption('--space <n>', 'the database space to search', spaceId)
    .addOption(new Option('--server <url>', "a running server's base URL (e.g. http://127.0.0.1:31128)").conflicts('data'))
    .option('--data <dir>', `data directory to search (default with no --server: ${DEFAULTS.dataDir}); a server may be running on it`)
    .addOption(new Option('--ranking <ranking>', 'verified (query variants and a thumbnail check) or imgseek (exactly imgSeek\'s)').choices(['verified', 'imgseek']).default('verified'))
    .option('--numres <n>', 'results per file', wholeNumber('a number of results', 1, 100_000), 10)
    .option('--json', 'one JSON line per file: {"file", "results": [{"id", "score"}]} or {"file", "error"}')
    .addHelpText('after', `\nExit status: 0 every file ranked; ${EXIT.someFailed} some files could not be (named on stderr); ${EXIT.error} an error stopped the run.`)
    .action(async (files: string[], opts: QueryOptions) => {
      try {
        await queryCommand(files, opts);
      } catch (err) {
        fail(err);
      }
    });
}

async function addCommand(paths: string[], opts: AddOptions): Promise<void> {
  const started = performance.now();
  const [{ Recorder }, { Progress }, { ReportWriter }, { describeAddSummary }] = await Promise.all([
    import('./add.ts'),
    import('./progress.ts'),
    import('./report.ts'),
    import('./outcome.ts'),
  ]);
  try {
    if (paths.length === 0 && !opts.ids) throw new BulkError('name the image files or directories to add (or give --ids FILE.csv listing them)');
    if (opts.key !== undefined && opts.server === undefined) throw new BulkError('--key goes with --server (with --data the writer lock is what is needed)');
    for (const p of paths) await assertExists(p);
    if (opts.ids) await assertExists(opts.ids);
    const ids = opts.ids ? { kind: 'csv' as const, file: resolve(opts.ids) } : opts.startId !== undefined ? { kind: 'sequential' as const, start: opts.startId } : { kind: 'names' as const };
    if (opts.thumbnailsOnly && opts.server !== undefined) throw new BulkError('--thumbnails-only works on a data directory (--data), with no writer running');
    const plan = { space: opts.space, paths, ids, replace: opts.replace === true, thumbnailsOnly: opts.thumbnailsOnly === true };

    // A first Ctrl-C stops taking new files and lets those in flight finish (and commit);
    // a second one exits at once. The handler stays registered until the end: the writer
    // lock's exit hook re-raises a signal nobody else listens to.
    const stop = new AbortController();
    let interrupted = false;
    const onSignal = () => {
      if (interrupted) process.exit(EXIT.interrupted);
      interrupted = true;
      stop.abort();
      process.stderr.write('\nhaarseek add: stopping after the files in flight (again to stop at once)\n');
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    const progress = opts.progress ? new Progress(process.stderr, true) : null;
    const report = opts.report ? new ReportWriter(resolve(opts.report)) : null;
    const recorder = new Recorder(report, progress);
    const countDone = new AbortController();
    const counting = countForProgress(paths, opts.ids, progress, AbortSignal.any([stop.signal, countDone.signal]));
    let label = '';
    let stoppedBy: unknown = null;
    try {
      if (opts.server !== undefined) {
        ({ label, stoppedBy } = await addThroughServer(opts, plan, recorder, stop.signal));
      } else {
        ({ label, stoppedBy } = await addToDataDir(opts, plan, recorder, stop.signal));
      }
    } finally {
      countDone.abort(); // ends the count if it still runs
      await counting;
      progress?.stop();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    const stopped = stoppedBy !== null ? messageOf(stoppedBy) : interrupted ? 'interrupted' : null;
    const summary = recorder.tally.summary(opts.space, label, (performance.now() - started) / 1000, stopped, report?.path ?? null);
    await report?.close(summary);
    if (opts.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else process.stdout.write(`${describeAddSummary(summary).join('\n')}\n`);
    if (stoppedBy !== null) throw stoppedBy;
    process.exitCode = interrupted ? EXIT.interrupted : summary.failed > 0 ? EXIT.someFailed : 0;
  } catch (err) {
    fail(err);
  }
}

async function addToDataDir(opts: AddOptions, plan: AddPlan, recorder: Recorder, stop: AbortSignal) {
  const [{ withWriterLock }, { DecodePool }, { DataDirTarget }, { runAdd }, { loadEngine }] = await Promise.all([
    import('./data-dir.ts'),
    import('./decode-pool.ts'),
    import('./data-target.ts'),
    import('./add.ts'),
    import('../engine.ts'),
  ]);
  const dataDir = opts.data!;
  const through = `add through it: haarseek add --server URL --space ${opts.space} ...`;
  return withWriterLock(dataDir, through, async (dbPath, lost) => {
    const engine = loadEngine();
    const pool = new DecodePool(opts.jobs, engine.name, { ...DEFAULT_DECODE_LIMITS, maxInputBytes: opts.maxBytes });
    const target = new DataDirTarget(dbPath, opts.space, pool, opts.jobs, recorder.settle, lost, undefined, plan.thumbnailsOnly);
    try {
      const either = AbortSignal.any([stop, lost]);
      const { stoppedBy } = await runAdd(plan, target, recorder, either);
      return { label: target.label, stoppedBy: stoppedBy ?? (lost.aborted ? lost.reason : null) };
    } finally {
      await target.close();
      await pool.close();
    }
  });
}

async function addThroughServer(opts: AddOptions, plan: AddPlan, recorder: Recorder, stop: AbortSignal) {
  const [{ ServerClient }, { ServerTarget }, { runAdd }] = await Promise.all([import('./server-client.ts'), import('./server-target.ts'), import('./add.ts')]);
  const client = new ServerClient(opts.server!, opts.key ?? (process.env.HAARSEEK_WRITE_KEY || undefined));
  if (!client.hasKey) {
    throw new BulkError(`adding through ${client.origin} needs its write key: --key KEY, or HAARSEEK_WRITE_KEY (the server's --write-key, HAARSEEK_WRITE_KEY or DATA/write.key)`);
  }
  await client.checkWriteKey(opts.space);
  const existing = await client.imageIds(opts.space);
  const target = new ServerTarget(client, opts.space, existing, opts.jobs, opts.maxBytes, recorder.settle);
  const { stoppedBy } = await runAdd(plan, target, recorder, stop);
  return { label: target.label, stoppedBy };
}

/** Counts the run's files beside it, so the progress bar gets a total and an ETA. */
async function countForProgress(paths: string[], ids: string | undefined, progress: Progress | null, stop: AbortSignal): Promise<void> {
  if (!progress) return;
  const { countFiles, countIdLines } = await import('./files.ts');
  try {
    const n = paths.length === 0 && ids ? await countIdLines(ids, stop) : await countFiles(paths, stop);
    if (!stop.aborted) progress.setTotal(n, true);
  } catch {
    // The count only feeds the display; the run reports its own errors.
  }
}

async function queryCommand(files: string[], opts: QueryOptions): Promise<void> {
  const { dataDirRanker, serverRanker, describeHits } = await import('./query.ts');
  let rank;
  if (opts.server !== undefined) {
    const { ServerClient } = await import('./server-client.ts');
    rank = serverRanker(new ServerClient(opts.server), opts.space, opts.numres, opts.ranking);
  } else {
    rank = dataDirRanker(opts.data ?? DEFAULTS.dataDir, opts.space, opts.numres, opts.ranking);
  }
  let failed = 0;
  for (const file of files) {
    const answer = await rank(file);
    if ('error' in answer) {
      failed++;
      if (opts.json) process.stdout.write(`${JSON.stringify({ file, error: answer.error })}\n`);
      process.stderr.write(`haarseek: ${file}: ${answer.error}\n`);
    } else if (opts.json) {
      process.stdout.write(`${JSON.stringify({ file, space: opts.space, results: answer.results })}\n`);
    } else {
      process.stdout.write(`${describeHits(file, answer.results).join('\n')}\n`);
    }
  }
  process.exitCode = failed > 0 ? EXIT.someFailed : 0;
}

/**
 * Runs this same command in a child process whose libuv pool has `threads` threads
 * (UV_THREADPOOL_SIZE is read once, before this code runs), and returns its exit code.
 */
async function rerunWithThreads(threads: number): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, UV_THREADPOOL_SIZE: String(threads) },
  });
  // Ctrl-C reaches the child through the terminal's process group; a plain kill is passed on.
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on('SIGINT', () => undefined);
  process.on('SIGTERM', forward);
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? EXIT.interrupted : EXIT.error)));
    child.once('error', (err) => {
      process.stderr.write(`haarseek: could not start the decoding process: ${err.message}\n`);
      resolve(EXIT.error);
    });
  });
}

async function assertExists(path: string): Promise<void> {
  const { stat } = await import('node:fs/promises');
  try {
    await stat(path);
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new BulkError(code === 'ENOENT' ? `${path}: no such file or directory` : `${path}: ${(err as Error).message}`);
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function fail(err: unknown): void {
  process.stderr.write(`haarseek: ${messageOf(err)}\n`);
  process.exitCode = err instanceof BulkError ? err.exitCode : EXIT.error;
  if (!(err instanceof BulkError) && process.env.HAARSEEK_DEBUG) process.stderr.write(`${(err as Error).stack}\n`);
}
