import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { goldenImages } from './helpers/golden.ts';
import { GOLDEN_DIR } from './helpers/paths.ts';
import { CLI } from './helpers/server.ts';

const run = promisify(execFile);

/** Runs the CLI expecting it to fail; resolves to the failure (code, stdout, stderr). */
async function runFailing(args: string[]): Promise<CliFailure> {
  try {
    await run(process.execPath, [CLI, ...args]);
  } catch (err) {
    return err as CliFailure;
  }
  throw new Error(`expected haarseek ${args.join(' ')} to fail`);
}

interface CliFailure {
  code: number;
  stdout: string;
  stderr: string;
}

describe('haarseek signature', () => {
  const dir = mkdtempSync(join(tmpdir(), 'haarseek-cli-'));
  const textFile = join(dir, 'notes.txt');
  writeFileSync(textFile, 'This is a text file, not an image.\n');
  const golden01 = join(GOLDEN_DIR, 'inputs/01.png');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('--json prints the size, avgl and coefficient lists of golden input 01 as imgSeek computed them', async () => {
    expect(goldenImages[0].file).toBe('inputs/01.png');
    const { stdout, stderr } = await run(process.execPath, [CLI, 'signature', golden01, '--json']);
    const out = JSON.parse(stdout);
    expect(Object.keys(out).sort()).toEqual(['engine', 'images']);
    expect(['ts', 'native']).toContain(out.engine);
    expect(out.images).toHaveLength(1);
    const [image] = out.images;
    expect(Object.keys(image).sort()).toEqual(['avgl', 'file', 'height', 'sig', 'width']);
    expect(image.file).toBe(golden01);
    expect([image.width, image.height]).toEqual([128, 128]);
    expect(image.sig).toEqual(goldenImages[0].sig);
    expect(image.avgl).toHaveLength(3);
    image.avgl.forEach((v: number, c: number) => expect(Math.abs(v - goldenImages[0].avgl[c])).toBeLessThan(1e-9));
    expect(stderr).not.toMatch(/error/i);
  });

  it('prints Y, I and Q lines in text mode, the same numbers as --json', async () => {
    const golden02 = join(GOLDEN_DIR, 'inputs/02.png');
    const { stdout } = await run(process.execPath, [CLI, 'signature', golden02]);
    expect(stdout).toContain(`${golden02}: 128x128`);
    for (const [c, channel] of ['Y', 'I', 'Q'].entries()) {
      const line = stdout.split('\n').find((l) => l.startsWith(`  ${channel} `));
      expect(line, `${channel} line in:\n${stdout}`).toMatch(new RegExp(`^ {2}${channel} -?\\d+( -?\\d+){39}$`));
      expect(line!.slice(4).split(' ').map(Number)).toEqual(goldenImages[1].sig[c]);
    }
    const avgl = stdout.split('\n').find((l) => l.startsWith('  avgl '))!.slice(7).split(' ').map(Number);
    avgl.forEach((v, c) => expect(Math.abs(v - goldenImages[1].avgl[c])).toBeLessThan(1e-9));
  });

  it('a file that is not an image: exit code 1 and a readable message on stderr', async () => {
    for (const args of [[textFile], [textFile, '--json']]) {
      const err = await runFailing(['signature', ...args]);
      expect(err.code).toBe(1);
      expect(err.stderr).toContain(`${textFile}: the image could not be decoded (corrupt, truncated or not an image)`);
      expect(err.stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
  });

  it('a missing file: exit code 1, the path and the reason on stderr', async () => {
    const missing = join(dir, 'nope.png');
    const err = await runFailing(['signature', missing]);
    expect(err.code).toBe(1);
    expect(err.stderr).toContain(missing);
    expect(err.stderr).toMatch(/no such file/i);
  });

  it('good and bad files together: the good one is printed, the exit code still says 1', async () => {
    const err = await runFailing(['signature', textFile, golden01, '--json']);
    expect(err.code).toBe(1);
    const out = JSON.parse(err.stdout);
    expect(out.images.map((im: { file: string }) => im.file)).toEqual([golden01]);
    expect(out.images[0].sig).toEqual(goldenImages[0].sig);
    expect(err.stderr).toContain(textFile);
  });
});

describe('haarseek serve refuses a bad configuration with one line and no start', () => {
  const serve = (args: string[], env: NodeJS.ProcessEnv) =>
    run(process.execPath, [CLI, 'serve', '--port', '1', ...args], { env: { ...process.env, ...env }, timeout: 30_000 }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
    );

  it('an unknown ranking, by flag or by HAARSEEK_RANKING', async () => {
    const data = mkdtempSync(join(tmpdir(), 'haarseek-cli-'));
    const byFlag = await serve(['--data', data, '--ranking', 'best'], {});
    expect(byFlag.code).not.toBe(0);
    expect(byFlag.stderr).toMatch(/--ranking.*best.*verified, imgseek|verified, imgseek/s);
    const byEnv = await serve(['--data', data], { HAARSEEK_RANKING: 'best' });
    expect(byEnv).toEqual({ code: 2, stderr: 'haarseek: HAARSEEK_RANKING must be verified or imgseek, not "best"\n' });
    rmSync(data, { recursive: true, force: true });
  });

  it('a --segment-delta-max that is not a whole number, for serve and for replica', async () => {
    const data = mkdtempSync(join(tmpdir(), 'haarseek-cli-'));
    const byServe = await serve(['--data', data, '--segment-delta-max', 'many'], {});
    expect(byServe.code).not.toBe(0);
    expect(byServe.stderr).toMatch(/--segment-delta-max.*many.*expected a whole number/s);
    const byReplica = await run(process.execPath, [CLI, 'replica', '--nats', 'nats://127.0.0.1:1', '--data', data, '--segment-delta-max', '-3'], { timeout: 30_000 }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
    );
    expect(byReplica.code).not.toBe(0);
    expect(byReplica.stderr).toMatch(/--segment-delta-max.*-3.*expected a whole number/s);
    rmSync(data, { recursive: true, force: true });
  });

  it('an empty write.key file', async () => {
    const data = mkdtempSync(join(tmpdir(), 'haarseek-cli-'));
    writeFileSync(join(data, 'write.key'), '\n');
    const env = { ...process.env };
    delete env.HAARSEEK_WRITE_KEY;
    const result = await run(process.execPath, [CLI, 'serve', '--data', data, '--port', '1'], { env, timeout: 30_000 }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(`haarseek: ${join(data, 'write.key')} is empty: write a key into it or delete it to have one generated\n`);
    rmSync(data, { recursive: true, force: true });
  });
});
