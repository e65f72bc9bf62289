import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportIsk } from '../../src/import/export.ts';
import { importIsk } from '../../src/import/import.ts';
import { hashSetOrder } from '../../src/import/isk-format.ts';
import { openWritable } from '../../src/store/open.ts';
import { WriterStore } from '../../src/store/writer-store.ts';
import { goldenImages } from '../helpers/golden.ts';
import { ISK_ALL, ISK_ONE, dumpDatabase, expectRefusal, parseAll, tempDir } from './helpers.ts';

const signatureOf = (k: number) => ({ coefs: Int32Array.from(goldenImages[k].sig.flat()), avgl: Float64Array.from(goldenImages[k].avgl) });

describe('exporting iskdaemon files', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('importing the real files and exporting them again gives the same bytes (savealldbs and savedb)', () => {
    const db = openWritable(join(dir, 'roundtrip.db'));
    try {
      importIsk(db, ISK_ALL);
      importIsk(db, ISK_ONE, { space: 3 });
      const all = join(dir, 'all-of-1-and-7.isk');
      const spaces = db.prepare('SELECT db_id FROM spaces ORDER BY db_id').pluck().all();
      expect(spaces).toEqual([1, 3, 7]);
      db.prepare('DELETE FROM spaces WHERE db_id = 3').run();
      expect(exportIsk(db, all)).toMatchObject({ format: 'isk-savealldbs', spaces: [1, 7], images: 24, bytes: 822_128 });
      expect(readFileSync(all).equals(readFileSync(ISK_ALL))).toBe(true);
      const one = join(dir, 'space1.isk');
      expect(exportIsk(db, one, { space: 1 })).toMatchObject({ format: 'isk-savedb', spaces: [1], images: 12, bytes: 411_072 });
      expect(readFileSync(one).equals(readFileSync(ISK_ONE))).toBe(true);
      db.prepare('INSERT INTO spaces VALUES (3, 0)').run();
      const three = join(dir, 'space3.isk');
      exportIsk(db, three, { space: 3 });
      expect(readFileSync(three).equals(readFileSync(ISK_ONE))).toBe(true);
      // The bucket section built a few buckets at a time (bounded memory), from kept
      // signatures or reading them again for each range, is the same.
      db.prepare('DELETE FROM spaces WHERE db_id = 3').run();
      for (const cacheBytes of [0, 1 << 20]) {
        const small = join(dir, `small-budget-${cacheBytes}.isk`);
        exportIsk(db, small, { entryBudget: 50, cacheBytes });
        expect(readFileSync(small).equals(readFileSync(ISK_ALL))).toBe(true);
      }
    } finally {
      db.close();
    }
  });

  it('without the kept file order the export lists each signature sorted, and still reads back the same rows', () => {
    const db = openWritable(join(dir, 'no-order.db'));
    const again = openWritable(join(dir, 'no-order-again.db'));
    try {
      importIsk(db, ISK_ALL, { keepFileOrder: false });
      expect(db.prepare("SELECT count(*) FROM sqlite_master WHERE name = 'isk_file_order'").pluck().get()).toBe(0);
      const out = join(dir, 'sorted.isk');
      exportIsk(db, out);
      const bytes = readFileSync(out);
      expect(bytes.length).toBe(822_128);
      expect(bytes.equals(readFileSync(ISK_ALL))).toBe(false);
      const parsed = parseAll(out).spaces;
      for (const space of parsed) for (const im of space.images) expect(im.fileCoefs).toEqual(im.coefs);
      expect(parsed.map((s) => s.images.map((im) => ({ ...im, fileCoefs: [] })))).toEqual(
        parseAll(ISK_ALL).spaces.map((s) => s.images.map((im) => ({ ...im, fileCoefs: [] }))),
      );
      importIsk(again, out, { keepFileOrder: false });
    } finally {
      db.close();
      again.close();
    }
    const rows = (path: string) => JSON.parse(dumpDatabase(path)) as Record<string, unknown>;
    const a = rows(join(dir, 'no-order.db'));
    const b = rows(join(dir, 'no-order-again.db'));
    expect(b.images).toEqual(a.images);
    expect(b.keywords).toEqual(a.keywords);
  });

  it("images stored the writer's way: sorted coefficients, keywords in iskdaemon's hash-set order, a re-import gives the same rows", () => {
    const path = join(dir, 'native.db');
    const writer = WriterStore.open(path);
    try {
      writer.putImage(4, 10, 800, 600, signatureOf(0));
      writer.putImage(4, 2 ** 40, 1, 1, signatureOf(5));
      writer.putImage(4, 11, 64, 48, signatureOf(13));
      // 5 and 198 share a hash bucket (mod 193); -7 lands in bucket 77.
      writer.addKeywords(4, 10, [198, 5, -7, 123_456_789]);
      writer.createSpace(6);
    } finally {
      writer.close();
    }
    const db = openWritable(path);
    const out = join(dir, 'native.isk');
    try {
      expect(exportIsk(db, out)).toMatchObject({ spaces: [4, 6], images: 3 });
    } finally {
      db.close();
    }
    const { spaces } = parseAll(out);
    expect(spaces.map((s) => [s.dbId, s.images.map((im) => im.id)])).toEqual([
      [4, [10, 11, 2 ** 40]],
      [6, []],
    ]);
    const first = spaces[0].images[0];
    expect([first.width, first.height]).toEqual([800, 600]);
    expect(first.fileCoefs).toEqual(goldenImages[0].sig);
    expect(first.avgl).toEqual(goldenImages[0].avgl);
    expect(first.keywords).toEqual([198, 5, -7, 123_456_789]);
    expect(hashSetOrder([5, 198, 123_456_789, -7])).toEqual([198, 5, -7, 123_456_789]);

    const back = join(dir, 'native-back.db');
    const db2 = openWritable(back);
    try {
      importIsk(db2, out);
    } finally {
      db2.close();
    }
    const a = JSON.parse(dumpDatabase(path));
    const b = JSON.parse(dumpDatabase(back));
    expect(b.images).toEqual(a.images);
    expect(b.keywords).toEqual(a.keywords);
    expect(b.spaces.map((r: unknown[]) => r[0])).toEqual([4, 6]);
  });

  it('an image replaced or re-tagged after the import is exported as it is now; the others keep their file order', () => {
    const path = join(dir, 'changed.db');
    const db = openWritable(path);
    try {
      importIsk(db, ISK_ALL);
    } finally {
      db.close();
    }
    const writer = WriterStore.open(path);
    try {
      writer.putImage(1, 104, 10, 20, signatureOf(20));
      writer.removeKeywords(1, 105, [9]);
    } finally {
      writer.close();
    }
    const db2 = openWritable(path);
    const out = join(dir, 'changed.isk');
    try {
      exportIsk(db2, out, { space: 1 });
    } finally {
      db2.close();
    }
    const now = parseAll(out).spaces[0].images;
    const before = parseAll(ISK_ONE).spaces[0].images;
    for (const [k, im] of now.entries()) {
      if (im.id === 104) {
        expect(im.fileCoefs).toEqual(goldenImages[20].sig);
        expect([im.width, im.height]).toEqual([10, 20]);
      } else if (im.id === 105) {
        expect(im.keywords).toEqual([-7, 123_456_789]);
        expect(im.fileCoefs).toEqual(before[k].fileCoefs);
      } else {
        expect(im).toEqual(before[k]);
      }
    }
  });

  it('refuses a space that does not exist; an empty database exports an empty savealldbs file', () => {
    const db = openWritable(join(dir, 'empty.db'));
    try {
      expectRefusal(() => exportIsk(db, join(dir, 'none.isk'), { space: 2 }), 'space', /database space 2 does not exist \(spaces: none\)/);
      const out = join(dir, 'empty.isk');
      expect(exportIsk(db, out)).toMatchObject({ spaces: [], images: 0, bytes: 20 });
      expect(readFileSync(out).toString('hex')).toBe('01000000030000000100000002000000' + '00000000');
      expect(importIsk(db, out).spaces).toEqual([]);
    } finally {
      db.close();
    }
  });
});
