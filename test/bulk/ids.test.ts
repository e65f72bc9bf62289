import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readIdLines } from '../../src/bulk/files.ts';
import { IdSet, idFromFileName, parseImageId } from '../../src/bulk/ids.ts';

describe('bulk add ids', () => {
  it('IdSet holds exactly the ids added, across its merges into the sorted array', () => {
    const set = new IdSet();
    const added = new Set<number>();
    let x = 12345;
    for (let i = 0; i < 300_000; i++) {
      x = (x * 1103515245 + 12345) % 2 ** 31; // a repeatable spread of ids, with repeats
      const id = (x % 1_000_000) + 1;
      set.add(id);
      added.add(id);
    }
    set.add(2 ** 53);
    added.add(2 ** 53);
    expect(set.size).toBe(added.size);
    for (let id = 1; id <= 1_000_000; id += 7) expect(set.has(id)).toBe(added.has(id));
    expect(set.has(2 ** 53)).toBe(true);
    expect(set.has(0)).toBe(false);
  });

  it('an IdSet made from ascending ids finds them', () => {
    const set = new IdSet(Float64Array.of(2, 5, 9, 2 ** 40));
    expect([1, 2, 5, 6, 9, 2 ** 40].map((id) => set.has(id))).toEqual([false, true, true, false, true, true]);
  });

  it('ids come from whole-number file names from 1 to 2^53', () => {
    expect(idFromFileName('/a/00042.jpg')).toEqual({ id: 42 });
    expect(idFromFileName('/a/9007199254740992.png')).toEqual({ id: 2 ** 53 });
    expect(idFromFileName('/a/9007199254740993.png')).toMatchObject({ reason: 'bad-id' });
    expect(idFromFileName('/a/0.jpg')).toMatchObject({ reason: 'bad-id' });
    expect(idFromFileName('/a/12.tar.jpg')).toMatchObject({ reason: 'no-id' });
    expect(idFromFileName('/a/-3.jpg')).toMatchObject({ reason: 'no-id' });
    expect(parseImageId(' 7 ')).toEqual({ id: 7 });
    expect(parseImageId('1e3')).toMatchObject({ error: expect.stringContaining('not a whole number') });
  });

  it('reads --ids lines: header, comments, quoted paths with commas, CRLF, paths from the file\'s folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'haarseek-ids-'));
    try {
      const csv = join(dir, 'ids.csv');
      writeFileSync(csv, '\uFEFFfile,id\r\n# a comment\r\na.jpg,1\r\n\r\n"b,c.jpg",2\r\n/abs/d.jpg, 3 \r\nno-comma\r\ne.jpg,zero\r\n');
      const lines = [];
      for await (const line of readIdLines(csv)) lines.push(line);
      expect(lines).toEqual([
        { path: join(dir, 'a.jpg'), id: 1 },
        { path: join(dir, 'b,c.jpg'), id: 2 },
        { path: '/abs/d.jpg', id: 3 },
        { path: `${csv}:7`, id: null, error: `line 7 of ${csv} is not "path,id": "no-comma"` },
        { path: join(dir, 'e.jpg'), id: null, error: `line 8 of ${csv}: "zero" is not a whole number` },
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
