import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { originalPath } from '../helpers/corpus.ts';
import { type ServerProcess, TEST_ENV, TEST_WRITE_KEY, freePort, rpcClient, startServerProcess, stopProcess, tempDataDir } from '../helpers/server.ts';
import { haarseek, makeImageFolder, stored, summaryOf, withoutKey } from './helpers.ts';

/** What every first add of the folder (makeImageFolder) ends with, whatever the target. */
function expectFolderSummary(s: Record<string, any>, images: string): void {
  expect(s).toMatchObject({
    space: 1,
    files: 11,
    added: 7,
    replaced: 0,
    skipped: 1,
    failed: 3,
    skippedBy: { 'not-image': 1 },
    failedBy: { 'no-id': 1, 'duplicate-id': 1, undecodable: 1 },
    stopped: null,
  });
  const byReason = Object.fromEntries(s.failures.map((f: any) => [f.reason, f]));
  expect(byReason['no-id']).toMatchObject({ path: join(images, 'holiday.jpg'), id: null });
  expect(byReason['no-id'].message).toMatch(/"holiday" is not a number.*--ids FILE\.csv or --start-id N/);
  expect(byReason.undecodable).toMatchObject({ path: join(images, '00008.jpg'), id: 8 });
  expect(byReason.undecodable.message).toMatch(/could not be decoded/);
  // Either file of id 3 may come first in the walk; the other is the duplicate.
  expect(byReason['duplicate-id'].id).toBe(3);
  expect([join(images, '00003.jpg'), join(images, 'sub/00003.png')]).toContain(byReason['duplicate-id'].path);
}

describe('haarseek add --data (straight into a data directory)', () => {
  let root: string;
  let images: string;
  let data: string;
  beforeAll(() => {
    root = tempDataDir('haarseek-bulk-');
    images = makeImageFolder(root);
    data = join(root, 'data');
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('walks the folder, adds what it can and says why the rest was not added, in the summary and the report', async () => {
    const report = join(root, 'first.jsonl');
    const run = await haarseek(['add', '--space', '1', '--data', data, images, '--report', report, '--json']);
    expect(run.code, run.stderr).toBe(3); // some files failed
    expect(run.stderr).toBe('');
    expectFolderSummary(summaryOf(run), images);
    // Committed with the change log, as the writer commits: running readers catch up.
    expect(stored(data, 1)).toEqual({ ids: [1, 2, 3, 4, 5, 6, 7], imageChanges: 7 });
    expect(existsSync(join(data, 'haarseek.db.writer.json'))).toBe(false); // the lock is released

    const lines = readFileSync(report, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(12); // 11 files and the summary
    expect(lines.at(-1).summary).toMatchObject({ added: 7, skipped: 1, failed: 3 });
    const records = lines.slice(0, -1);
    expect(records.filter((r) => r.outcome === 'added').map((r) => r.id).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(records.find((r) => r.path === join(images, 'notes.txt'))).toEqual({
      path: join(images, 'notes.txt'),
      id: null,
      outcome: 'skipped',
      reason: 'not-image',
      message: 'not an image by its extension',
    });
    expect(records.find((r) => r.path === join(images, '00008.jpg'))).toMatchObject({ id: 8, outcome: 'failed', reason: 'undecodable' });
  });

  it('the text summary names each reason and each failed file', async () => {
    const run = await haarseek(['add', '--space', '9', '--data', data, images]);
    expect(run.code, run.stderr).toBe(3);
    expect(run.stdout).toMatch(/^space 9 \(data .*\/data\): added 7, skipped 1, failed 3 of 11 files in \d+\.\d\d s \([\d.]+ images\/s\)\n/);
    expect(run.stdout).toContain('  1 not-image: not an image by its extension');
    expect(run.stdout).toContain('  1 no-id: the file name is not a number, or the --ids file has no line for it');
    expect(run.stdout).toContain('  1 duplicate-id: an earlier file of this run has the same id');
    expect(run.stdout).toContain('  1 undecodable: corrupt, truncated, empty, or not a format sharp reads');
    expect(run.stdout).toMatch(/\n {2}.*\/images\/00008\.jpg \(id 8\): undecodable: the image could not be decoded/);
    expect(run.stdout).toMatch(/\n {2}.*\/images\/holiday\.jpg: no-id: /);
  });

  it('a second run skips the ids already present (resume) and decodes nothing new', async () => {
    const run = await haarseek(['add', '--space', '1', '--data', data, images, '--json']);
    expect(run.code, run.stderr).toBe(3); // the same three files still fail
    expect(summaryOf(run)).toMatchObject({ files: 11, added: 0, skipped: 8, failed: 3, skippedBy: { present: 7, 'not-image': 1 } });
    expect(stored(data, 1)).toEqual({ ids: [1, 2, 3, 4, 5, 6, 7], imageChanges: 7 });
  });

  it('--replace stores over the ids present', async () => {
    const run = await haarseek(['add', '--space', '1', '--data', data, images, '--replace', '--json']);
    expect(summaryOf(run)).toMatchObject({ added: 7, replaced: 7, skipped: 1, failed: 3 });
    expect(stored(data, 1)).toEqual({ ids: [1, 2, 3, 4, 5, 6, 7], imageChanges: 14 });
  });

  it('takes ids from a CSV: its lines as the files, or looked up for the files walked', async () => {
    const csv = join(root, 'ids.csv');
    // A header, a comment, paths relative to the CSV's folder or absolute, and a bad id.
    writeFileSync(csv, `path,id\n# holidays\nimages/holiday.jpg,500\n${join(images, '00001.jpg')},501\nimages/sub/00007.jpg,x7\n`);
    const alone = await haarseek(['add', '--space', '2', '--data', data, '--ids', csv, '--json']);
    expect(alone.code, alone.stderr).toBe(3);
    const s = summaryOf(alone);
    expect(s).toMatchObject({ files: 3, added: 2, failed: 1, failedBy: { 'bad-id': 1 } });
    expect(s.failures[0].message).toMatch(/line 5 of .*ids\.csv: "x7" is not a whole number/);
    expect(stored(data, 2).ids).toEqual([500, 501]);

    // With a folder: every image walked needs a line; the CSV's own ids are already there.
    const report = join(root, 'ids-report.csv');
    const walked = await haarseek(['add', '--space', '2', '--data', data, '--ids', csv, images, '--json', '--report', report]);
    expect(summaryOf(walked)).toMatchObject({ files: 11, added: 0, skipped: 3, failed: 8, skippedBy: { present: 2, 'not-image': 1 }, failedBy: { 'no-id': 7, 'bad-id': 1 } });
    const rows = readFileSync(report, 'utf8').split('\n');
    expect(rows[0]).toBe('path,id,outcome,reason,message');
    expect(rows).toContain(`${join(images, 'holiday.jpg')},500,skipped,present,space 2 already holds id 500`);
    expect(rows.find((r) => r.startsWith(join(images, '00002.jpg')))).toMatch(/^.*00002\.jpg,,failed,no-id,.*ids\.csv has no line for this file$/);
  });

  it('numbers files from --start-id in name order, so a rerun gives every file the same id', async () => {
    const first = await haarseek(['add', '--space', '3', '--data', data, images, '--start-id', '1000', '--json', '--report', join(root, 'seq.jsonl')]);
    expect(summaryOf(first)).toMatchObject({ files: 11, added: 9, skipped: 1, failed: 1, failedBy: { undecodable: 1 } });
    const ids = Object.fromEntries(
      readFileSync(join(root, 'seq.jsonl'), 'utf8').trim().split('\n').slice(0, -1).map((l) => JSON.parse(l)).map((r) => [r.path.slice(images.length + 1), r.id]),
    );
    expect(ids).toEqual({
      '00001.jpg': 1000,
      '00002.jpg': 1001,
      '00003.jpg': 1002,
      '00004.jpg': 1003,
      '00005.jpg': 1004,
      '00006.jpg': 1005,
      '00008.jpg': 1006,
      'holiday.jpg': 1007,
      'notes.txt': null,
      'sub/00003.png': 1008,
      'sub/00007.jpg': 1009,
    });
    const again = await haarseek(['add', '--space', '3', '--data', data, images, '--start-id', '1000', '--json']);
    expect(summaryOf(again)).toMatchObject({ added: 0, skipped: 10, failed: 1, skippedBy: { present: 9 } });
  });

  it('a file over --max-bytes fails as too large without being read', async () => {
    const run = await haarseek(['add', '--space', '4', '--data', data, join(images, '00001.jpg'), '--max-bytes', '1000', '--json']);
    expect(run.code).toBe(3);
    expect(summaryOf(run)).toMatchObject({ added: 0, failed: 1, failedBy: { 'too-large': 1 } });
    expect(summaryOf(run).failures[0].message).toMatch(/^the file is \d+ bytes; the limit is 1000 bytes \(--max-bytes\)$/);
  });

  it('refuses clearly what cannot be run', async () => {
    const none = await haarseek(['add', '--space', '1', '--data', data]);
    expect([none.code, none.stderr]).toEqual([1, 'haarseek: name the image files or directories to add (or give --ids FILE.csv listing them)\n']);
    const missing = await haarseek(['add', '--space', '1', '--data', data, join(root, 'nowhere')]);
    expect([missing.code, missing.stderr]).toEqual([1, `haarseek: ${join(root, 'nowhere')}: no such file or directory\n`]);
    const both = await haarseek(['add', '--space', '1', '--data', data, '--server', 'http://127.0.0.1:1', images]);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/--server.*cannot be used with.*--data/);
    const space = await haarseek(['add', '--space', '-1', '--data', data, images]);
    expect(space.stderr).toMatch(/expected a database space id/);
  });
});

describe('haarseek add --server (through a running writer)', () => {
  let root: string;
  let images: string;
  let writer: ServerProcess | undefined;
  let base: string;
  beforeAll(async () => {
    root = tempDataDir('haarseek-bulk-server-');
    images = makeImageFolder(root);
    writer = await startServerProcess('writer', join(root, 'data'));
    base = `http://127.0.0.1:${writer.port}`;
  });
  afterAll(async () => {
    await stopProcess(writer);
    rmSync(root, { recursive: true, force: true });
  });

  it('refuses a wrong or missing key before adding anything', async () => {
    const report = join(root, 'refused.jsonl');
    const wrong = await haarseek(['add', '--space', '1', '--server', base, '--key', 'not-the-key', images, '--report', report]);
    expect(wrong.code).toBe(1);
    expect(existsSync(report)).toBe(false);
    expect(wrong.stderr).toBe(`haarseek: ${base} refused the write key (HTTP 401); give the server's key with --key KEY or HAARSEEK_WRITE_KEY\n`);
    const missing = await haarseek(['add', '--space', '1', '--server', base, images]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^haarseek: adding through .* needs its write key: --key KEY, or HAARSEEK_WRITE_KEY/);
    expect(await rpcClient(writer!.url)('getDbList')).toEqual([]);
  });

  it('adds the folder with the key from HAARSEEK_WRITE_KEY, with the same outcomes as --data', async () => {
    const run = await haarseek(['add', '--space', '1', '--server', base, images, '--json', '--jobs', '3'], TEST_ENV);
    expect(run.code, run.stderr).toBe(3);
    expectFolderSummary(summaryOf(run), images);
    expect(summaryOf(run).target).toBe(`server ${base}`);
    expect(await rpcClient(writer!.url)('getDbImgIdList', 1)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('resumes by skipping the ids the server holds, and --replace stores over them (key in the URL, /RPC path)', async () => {
    const url = `http://client:${TEST_WRITE_KEY}@127.0.0.1:${writer!.port}/RPC`;
    const again = await haarseek(['add', '--space', '1', '--server', url, images, '--json'], withoutKey());
    expect(summaryOf(again)).toMatchObject({ added: 0, skipped: 8, failed: 3, skippedBy: { present: 7 } });
    const replaced = await haarseek(['add', '--space', '1', '--server', base, '--key', TEST_WRITE_KEY, images, '--json', '--replace']);
    expect(summaryOf(replaced)).toMatchObject({ added: 7, replaced: 7, failed: 3 });
  });

  it('--data refuses to write where this writer runs (exit 2, naming it), leaving the space untouched', async () => {
    const run = await haarseek(['add', '--space', '5', '--data', join(root, 'data'), images]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      new RegExp(`^haarseek: a haarseek writer is running on .*/data \\(.*pid ${writer!.child.pid}, port ${writer!.port}, .*\\); stop it first, or add through it: haarseek add --server URL`),
    );
    expect(await rpcClient(writer!.url)('getDbList')).toEqual([1]);
  });

  it('says clearly when the server cannot be reached', async () => {
    const port = await freePort(); // nothing listens there
    const run = await haarseek(['add', '--space', '1', '--server', `http://127.0.0.1:${port}`, '--key', 'k', images]);
    expect([run.code, run.stderr]).toEqual([1, `haarseek: cannot reach the server at http://127.0.0.1:${port}: ECONNREFUSED\n`]);
  });

  it('query --server ranks a stored image first for its own file', async () => {
    const run = await haarseek(['query', '--space', '1', '--server', base, originalPath(4), '--numres', '3', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const answer = JSON.parse(run.stdout);
    expect(answer.file).toBe(originalPath(4));
    expect(answer.results).toHaveLength(3);
    expect(answer.results[0].id).toBe(4);
    expect(answer.results[0].score).toBeGreaterThan(90);
    const imgseek = JSON.parse((await haarseek(['query', '--space', '1', '--server', base, originalPath(4), '--numres', '3', '--json', '--ranking', 'imgseek'])).stdout);
    expect(imgseek.results[0]).toEqual({ id: 4, score: 100 });
  });
});
