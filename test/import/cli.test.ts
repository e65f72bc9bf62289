import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/paths.ts';
import { CLI } from '../helpers/server.ts';
import { IQDB, ISK_ALL, ISK_ONE, dumpDatabase, tempDir } from './helpers.ts';

const execFileAsync = promisify(execFile);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function haarseek(...args: string[]): Promise<Run> {
  try {
    const { stdout, stderr } = await execFileAsync(process.execPath, [CLI, ...args]);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function counts(dataDir: string): Array<[number, number]> {
  const db = new Database(join(dataDir, 'haarseek.db'), { readonly: true });
  try {
    return db.prepare('SELECT db_id, count(*) FROM images GROUP BY db_id ORDER BY db_id').raw().all() as Array<[number, number]>;
  } finally {
    db.close();
  }
}

/** Another process holding a lock the way the writer (or the cluster supervisor) does. */
async function holdLock(kind: 'writer' | 'cluster', dataDir: string): Promise<ChildProcess> {
  const lockUrl = pathToFileURL(join(REPO_ROOT, 'dist/src/server/writer-lock.js')).href;
  const lockfileUrl = pathToFileURL(join(REPO_ROOT, 'node_modules/proper-lockfile/index.js')).href;
  const script =
    kind === 'writer'
      ? `const { acquireWriterLock } = await import(${JSON.stringify(lockUrl)});
         await acquireWriterLock(${JSON.stringify(join(dataDir, 'haarseek.db'))}, 4242, () => {});`
      : `const lockfile = (await import(${JSON.stringify(lockfileUrl)})).default;
         await lockfile.lock(${JSON.stringify(dataDir)}, { realpath: false, lockfilePath: ${JSON.stringify(join(dataDir, 'cluster.lock'))}, stale: 10000, update: 2000 });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', `${script}\nprocess.stdout.write('locked\\n');\nsetInterval(() => {}, 1000);`], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
    child.once('exit', (code) => reject(new Error(`lock holder exited with ${code}`)));
  });
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

describe('haarseek import / export (the CLI on a data directory)', () => {
  let root: string;
  beforeAll(() => {
    root = tempDir('haarseek-import-cli-');
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('import isk loads every space of a savealldbs file and says what it did', async () => {
    const data = join(root, 'all');
    const run = await haarseek('import', 'isk', ISK_ALL, '--data', data);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^imported space 1 from iskdaemon-0\.9\.5\.isk: 12 images, 6 keywords\nimported space 7 from iskdaemon-0\.9\.5\.isk: 12 images, 3 keywords\nimported in \d+\.\d\d s\n$/);
    expect(counts(data)).toEqual([
      [1, 12],
      [7, 12],
    ]);
    // The lock is released: the holder file is gone.
    expect(existsSync(join(data, 'haarseek.db.writer.json'))).toBe(false);
    // A segment set of what was imported, for the next start to map instead of reading SQLite.
    const manifest = JSON.parse(readFileSync(join(data, 'segments', 'current.json'), 'utf8'));
    expect(manifest.spaces.map((s: { dbId: number; count: number }) => [s.dbId, s.count])).toEqual([
      [1, 12],
      [7, 12],
    ]);
    expect(existsSync(join(data, 'segments', 'space-7.hseg'))).toBe(true);
  });

  it('export --format isk writes the same bytes back, one space (savedb) or all (savealldbs)', async () => {
    const data = join(root, 'all');
    const one = join(root, 'one.isk');
    const all = join(root, 'all.isk');
    const a = await haarseek('export', '--format', 'isk', '--space', '1', one, '--data', data);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toMatch(/^exported space 1 \(savedb\) to .*one\.isk: 12 images, 411072 bytes\n/);
    expect(readFileSync(one).equals(readFileSync(ISK_ONE))).toBe(true);
    const b = await haarseek('export', '--format', 'isk', all, '--data', data);
    expect(b.code, b.stderr).toBe(0);
    expect(readFileSync(all).equals(readFileSync(ISK_ALL))).toBe(true);
    const c = await haarseek('export', '--format', 'png', all, '--data', data);
    expect(c.code).not.toBe(0);
    expect(c.stderr).toMatch(/--format.*isk/);
    const d = await haarseek('export', '--format', 'isk', '--space', '2', all, '--data', data);
    expect([d.code, d.stderr]).toEqual([1, 'haarseek: database space 2 does not exist (spaces: 1, 7)\n']);
    const e = await haarseek('export', '--format', 'isk', all, '--data', join(root, 'nowhere'));
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/there is no haarseek database in .*nowhere/);
  });

  it('a savedb file goes into the space given with --space, and needs one', async () => {
    const data = join(root, 'one');
    const refused = await haarseek('import', 'isk', ISK_ONE, '--data', data);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^haarseek: .*iskdaemon-0\.9\.5-savedb-space1\.isk is a single-space iskdaemon file .*\(--space N, or loadDb\(N, file\)\)\n$/);
    const run = await haarseek('import', 'isk', ISK_ONE, '--space', '4', '--data', data, '--json');
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout);
    expect(summary).toMatchObject({ format: 'isk-savedb', spaces: [{ dbId: 4, fromSpace: null, images: 12, keywords: 6, replaced: 0 }] });
    expect(typeof summary.seconds).toBe('number');
    expect(counts(data)).toEqual([[4, 12]]);
  });

  it('import iqdb needs --space and loads the posts into it', async () => {
    const data = join(root, 'iqdb');
    const missing = await haarseek('import', 'iqdb', IQDB, '--data', data);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/--space/);
    const run = await haarseek('import', 'iqdb', IQDB, '--space', '2', '--data', data);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^imported space 2 from iqdb\.sqlite: 24 images, 0 keywords\n/);
    expect(counts(data)).toEqual([[2, 24]]);
    const again = await haarseek('import', 'iqdb', IQDB, '--space', '2', '--data', data);
    expect(again.stdout).toMatch(/24 images, 0 keywords \(replaced 24 images\)/);
  });

  it('a refused file: exit 1, the reason on stderr, the database untouched', async () => {
    const data = join(root, 'all');
    const before = dumpDatabase(join(data, 'haarseek.db'));
    const cut = join(root, 'cut.isk');
    writeFileSync(cut, readFileSync(ISK_ALL).subarray(0, 500_000));
    const run = await haarseek('import', 'isk', cut, '--data', data);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^haarseek: .*cut\.isk is truncated: .* but the file ends at byte 500000\n$/);
    const png = await haarseek('import', 'iqdb', join(REPO_ROOT, '../shared/golden/inputs/01.png'), '--space', '1', '--data', data);
    expect(png.code).toBe(1);
    expect(png.stderr).toMatch(/is a PNG image, not an iqdb database/);
    expect(dumpDatabase(join(data, 'haarseek.db'))).toBe(before);
  });

  it('refuses while a writer holds the lock (exit 2, naming it), works once it is gone', async () => {
    const data = join(root, 'all');
    const before = dumpDatabase(join(data, 'haarseek.db'));
    const holder = await holdLock('writer', data);
    try {
      const run = await haarseek('import', 'isk', ISK_ALL, '--data', data);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(new RegExp(`^haarseek: a haarseek writer is running on .*all \\(another writer holds the lock .*\\(pid ${holder.pid}, port 4242, since .*\\); stop it before importing here, or load the file through it \\(XML-RPC loadDb/loadAllDbs\\)\\n$`));
      const exp = await haarseek('export', '--format', 'isk', join(root, 'x.isk'), '--data', data);
      expect(exp.code).toBe(2);
      expect(exp.stderr).toMatch(/a haarseek writer is running/);
      expect(existsSync(join(root, 'x.isk'))).toBe(false);
    } finally {
      await stop(holder);
    }
    expect(dumpDatabase(join(data, 'haarseek.db'))).toBe(before);
    // The holder is dead: its lock is taken over at once, as the writer does.
    const run = await haarseek('import', 'isk', ISK_ALL, '--space', '7', '--data', data);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/imported space 7 .*\(replaced 12 images\)/);
  });

  it('refuses while a cluster runs on the directory', async () => {
    const data = join(root, 'all');
    const holder = await holdLock('cluster', data);
    try {
      const run = await haarseek('import', 'isk', ISK_ALL, '--data', data);
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/^haarseek: a haarseek cluster is running on .*all; stop it before importing here/);
    } finally {
      await stop(holder);
    }
  });
});
