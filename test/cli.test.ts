import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { goldenImages } from './helpers/golden.ts';
import { GOLDEN_DIR } from './helpers/paths.ts';
import { CLI } from './helpers/server.ts';

const run = promisify(execFile);

describe('haarseek signature', () => {
  it('--json prints the size, avgl and coefficient lists of golden input 01 as imgSeek computed them', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'signature', join(GOLDEN_DIR, 'inputs/01.png'), '--json']);
    const out = JSON.parse(stdout);
    const [image] = out.images;
    expect(['ts', 'native']).toContain(out.engine);
    expect([image.width, image.height]).toEqual([128, 128]);
    expect(image.sig).toEqual(goldenImages[0].sig);
    image.avgl.forEach((v: number, c: number) => expect(Math.abs(v - goldenImages[0].avgl[c])).toBeLessThan(1e-9));
  });

  it('prints Y, I and Q lines in text mode', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'signature', join(GOLDEN_DIR, 'inputs/02.png')]);
    expect(stdout).toContain('128x128');
    expect(stdout).toMatch(/^ {2}Y -?\d+( -?\d+){39}$/m);
    expect(stdout).toMatch(/^ {2}Q -?\d+( -?\d+){39}$/m);
  });

  it('a file that is not an image: exit code 1 and a readable message', async () => {
    const err = await run(process.execPath, [CLI, 'signature', '/etc/hostname']).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toContain('/etc/hostname: the image could not be decoded');
  });
});
