import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { originalPath } from '../helpers/corpus.ts';
import { CORPUS_DIR } from '../helpers/paths.ts';
import { type ServerProcess, startServerProcess, stopProcess, tempDataDir } from '../helpers/server.ts';
import { haarseek, summaryOf } from './helpers.ts';

/** Distorted copies of corpus originals (truth.csv), each with the id it must find first. */
const QUERIES: Array<[file: string, expected: number]> = [
  ['00012_half_q40.jpg', 12],
  ['00017_blur.jpg', 17],
  ['00023_crop90.jpg', 23],
  ['00031_blur.jpg', 31],
  ['00038_watermark.jpg', 38],
].map(([f, id]) => [join(CORPUS_DIR, 'queries', f as string), id as number]);

describe('haarseek query (ranked ids and scores for image files)', () => {
  let root: string;
  let data: string;
  let writer: ServerProcess | undefined;
  beforeAll(async () => {
    root = tempDataDir('haarseek-bulk-query-');
    const images = join(root, 'originals');
    mkdirSync(images);
    for (let n = 1; n <= 40; n++) copyFileSync(originalPath(n), join(images, `${n}.jpg`));
    data = join(root, 'data');
    const run = await haarseek(['add', '--space', '1', '--data', data, images, '--json']);
    expect(summaryOf(run)).toMatchObject({ added: 40, failed: 0 });
  });
  afterAll(async () => {
    await stopProcess(writer);
    rmSync(root, { recursive: true, force: true });
  });

  it('--data: each distorted query finds its original first', async () => {
    const run = await haarseek(['query', '--space', '1', '--data', data, ...QUERIES.map(([f]) => f), '--json', '--numres', '5']);
    expect(run.code, run.stderr).toBe(0);
    const answers = run.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(answers.map((a) => [a.file, a.results[0].id])).toEqual(QUERIES);
    for (const a of answers) {
      expect(a.results).toHaveLength(5);
      const scores = a.results.map((r: { score: number }) => r.score);
      expect([...scores].sort((x, y) => y - x)).toEqual(scores); // best first
    }
  });

  it('prints ranks, ids and scores as text, and names a file it cannot rank (exit 3)', async () => {
    const bad = join(root, 'bad.jpg');
    writeFileSync(bad, 'not an image');
    const run = await haarseek(['query', '--space', '1', '--data', data, QUERIES[0][0], bad, '--numres', '2']);
    expect(run.code).toBe(3);
    expect(run.stdout).toMatch(new RegExp(`^${QUERIES[0][0]}:\\n {3}1 {2}12 +\\d+\\.\\d\\d\\n {3}2 +\\d+ +\\d+\\.\\d\\d\\n$`));
    expect(run.stderr).toMatch(new RegExp(`^haarseek: ${bad}: the image could not be decoded`));
  });

  it('says which spaces exist when asked for another, and when there is no database', async () => {
    const run = await haarseek(['query', '--space', '2', '--data', data, QUERIES[0][0]]);
    expect([run.code, run.stderr]).toEqual([1, `haarseek: database space 2 does not exist in ${data} (spaces: 1)\n`]);
    const none = await haarseek(['query', '--space', '1', '--data', join(root, 'nowhere'), QUERIES[0][0]]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/there is no haarseek database in .*nowhere/);
  });

  it('--server answers as --data does, and --data still reads while the writer runs', async () => {
    writer = await startServerProcess('writer', data);
    const base = `http://127.0.0.1:${writer.port}`;
    const files = QUERIES.map(([f]) => f);
    const viaServer = await haarseek(['query', '--space', '1', '--server', base, ...files, '--json']);
    expect(viaServer.code, viaServer.stderr).toBe(0);
    const viaData = await haarseek(['query', '--space', '1', '--data', data, ...files, '--json']);
    expect(viaData.code, viaData.stderr).toBe(0);
    const ranked = (out: string) => out.trim().split('\n').map((l) => JSON.parse(l)).map((a) => a.results.map((r: { id: number }) => r.id));
    expect(ranked(viaServer.stdout)).toEqual(ranked(viaData.stdout));
    // imgSeek's own ranking is the same through both too, scores included.
    const exact = await Promise.all(['--server', '--data'].map((how) => haarseek(['query', '--space', '1', how, how === '--server' ? base : data, ...files, '--json', '--ranking', 'imgseek'])));
    expect(exact[0].stdout).toBe(exact[1].stdout);
    expect(ranked(viaServer.stdout).map((ids) => ids[0])).toEqual(QUERIES.map(([, id]) => id));
    const missing = await haarseek(['query', '--space', '7', '--server', base, files[0]]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/database space 7 does not exist/);
  });
});
