import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { GOLDEN_DIR } from '../helpers/paths.ts';
import { tempDataDir } from '../helpers/server.ts';
import { haarseek } from './helpers.ts';

describe('haarseek add --thumbnails-only: thumbnails for a database imported from iskdaemon', () => {
  it('gives the imported images their thumbnails from the image files and touches nothing else', async () => {
    const data = tempDataDir();
    const imported = await haarseek(['import', 'isk', join(GOLDEN_DIR, 'imports/iskdaemon-0.9.5.isk'), '--data', data]);
    expect(imported.code, imported.stderr).toBe(0);
    const db = new Database(join(data, 'haarseek.db'), { readonly: true });
    const rows = () => db.prepare('SELECT image_id, sig, thumb FROM images WHERE db_id = 1 ORDER BY image_id').all() as Array<{ image_id: number; sig: Buffer; thumb: Buffer | null }>;
    const before = rows();
    expect(before).toHaveLength(12);
    expect(before.every((r) => r.thumb === null)).toBe(true);
    // Space 1 holds ids 101..112 = golden inputs 01..12; 13 is not in the space.
    const csv = join(data, 'ids.csv');
    writeFileSync(csv, Array.from({ length: 13 }, (_, i) => `${join(GOLDEN_DIR, 'inputs', `${String(i + 1).padStart(2, '0')}.png`)},${101 + i}`).join('\n'));
    const run = await haarseek(['add', '--space', '1', '--data', data, '--ids', csv, '--thumbnails-only', '--json', '--no-progress']);
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout.trim().split('\n').pop()!);
    expect(summary.added).toBe(12);
    expect(summary.skippedBy).toEqual({ absent: 1 });
    const after = rows();
    expect(after.map((r) => r.thumb?.length)).toEqual(Array(12).fill(32 * 48));
    expect(after.map((r) => r.sig.toString('hex'))).toEqual(before.map((r) => r.sig.toString('hex')));
    db.close();
    const refused = await haarseek(['add', '--space', '1', '--server', 'http://127.0.0.1:1', '--ids', csv, '--thumbnails-only']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('--thumbnails-only works on a data directory');
  });
});
