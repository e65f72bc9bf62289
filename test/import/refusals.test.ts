import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImportError } from '../../src/import/errors.ts';
import { importIqdb, importIqdbAsync, importIsk, importIskAsync } from '../../src/import/import.ts';
import { openWritable } from '../../src/store/open.ts';
import { prng } from '../../scripts/lib/prng.ts';
import { GOLDEN_DIR } from '../helpers/paths.ts';
import { IMPORTS_DIR, IQDB, ISK_ALL, ISK_ONE, dumpDatabase, expectRefusal, tempDir, to32Bit, walk64 } from './helpers.ts';

/**
 * Every refused file leaves the database exactly as it was: the store below already
 * holds both spaces of the real file (plus the file-order table), and its full dump is
 * compared after each refusal.
 */
describe('refused files', () => {
  let dir: string;
  let dbPath: string;
  let db: Database.Database;
  let before: string;
  const all = readFileSync(ISK_ALL);
  const one = readFileSync(ISK_ONE);
  let n = 0;
  const write = (bytes: Uint8Array, name = `bad-${n++}.isk`) => {
    const path = join(dir, name);
    writeFileSync(path, bytes);
    return path;
  };
  const unchanged = () => expect(dumpDatabase(dbPath)).toBe(before);

  beforeAll(() => {
    dir = tempDir();
    dbPath = join(dir, 'haarseek.db');
    db = openWritable(dbPath);
    importIsk(db, ISK_ALL);
    importIqdb(db, IQDB, { space: 9 });
    before = dumpDatabase(dbPath);
    expect(before).toContain('isk_file_order');
  });
  afterAll(() => {
    db?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('truncated iskdaemon files, cut at many offsets, say where the file stopped', () => {
    const map = JSON.parse(readFileSync(join(IMPORTS_DIR, 'iskdaemon-0.9.5.json'), 'utf8')).byte_map_of_this_file as Record<string, [number, number]>;
    const cuts = [
      2, 10, 16, 18, 20, 24, 100, 30_001, map.space_1_buckets[1] - 4, map.space_1_image_count_uint64[0], map.space_1_image_count_uint64[0] + 4,
      map.space_1_records[0], map.space_1_records[0] + 3000, map.space_7_id_int32[0] - 1, map.space_7_id_int32[0], map.space_7_id_int32[1],
      map.space_7_records[0] + 520, all.length - 1,
    ];
    for (const cut of cuts) {
      it(`savealldbs cut at byte ${cut}`, () => {
        const path = write(all.subarray(0, cut));
        const err = expectRefusal(() => importIsk(db, path), 'truncated', /is truncated/, new RegExp(path.replace(/[.]/g, '\\.')));
        expect(err.message).toMatch(/was expected at byte \d+|from byte \d+|bytes follow/);
        unchanged();
      });
    }
    for (const cut of [24, 5000, 393_240, one.length - 520, one.length - 2]) {
      it(`savedb cut at byte ${cut}`, () => {
        const path = write(one.subarray(0, cut));
        expectRefusal(() => importIsk(db, path, { space: 1 }), 'truncated', /is truncated/);
        unchanged();
      });
    }
    it('the message names the field that is missing and where', () => {
      const w = walk64(all, 'savealldbs');
      const path = write(all.subarray(0, w.keywordsAt[1][11] + 2));
      expectRefusal(() => importIsk(db, path), 'truncated', /the keyword count of image 2012 in space 7 \(4 bytes\) was expected at byte 822124, but the file ends at byte 822126/);
      const path2 = write(all.subarray(0, map.space_1_image_count_uint64[0] + 4));
      expectRefusal(() => importIsk(db, path2), 'truncated', /the image count of space 1 \(8 bytes\) was expected at byte 404760/);
    });
  });

  describe('foreign files are named', () => {
    it('a PNG, a JPEG, a SQLite database, a text file, an empty file, random bytes', () => {
      expectRefusal(() => importIsk(db, join(GOLDEN_DIR, 'inputs/01.png')), 'foreign', /is a PNG image, not an iskdaemon database file/);
      expectRefusal(() => importIsk(db, join(IMPORTS_DIR, 'iqdb-uploads/01.jpg')), 'foreign', /is a JPEG image, not an iskdaemon database file/);
      expectRefusal(() => importIsk(db, IQDB), 'foreign', /is a SQLite database, not an iskdaemon database file/);
      expectRefusal(() => importIsk(db, write(Buffer.from('savealldbs\n'))), 'foreign', /is a text file, not an iskdaemon/);
      expectRefusal(() => importIsk(db, write(Buffer.alloc(0))), 'foreign', /is empty \(0 bytes\)/);
      const rand = prng(7);
      const noise = Buffer.from(Array.from({ length: 4096 }, () => Math.floor(rand() * 256)));
      noise[0] = 0xf3;
      expectRefusal(() => importIsk(db, write(noise)), 'foreign', /does not start with iskdaemon's header/);
      unchanged();
    });

    it('import iqdb: a PNG, an iskdaemon file, a random SQLite database, a haarseek database', () => {
      expectRefusal(() => importIqdb(db, join(GOLDEN_DIR, 'inputs/01.png'), { space: 9 }), 'foreign', /is a PNG image, not an iqdb database/);
      expectRefusal(() => importIqdb(db, ISK_ALL, { space: 9 }), 'foreign', /looks like an iskdaemon database file/);
      const other = join(dir, 'other.sqlite');
      const o = new Database(other);
      o.exec('CREATE TABLE posts (id INTEGER PRIMARY KEY, md5 TEXT); CREATE TABLE tags (name TEXT)');
      o.close();
      expectRefusal(() => importIqdb(db, other, { space: 9 }), 'foreign', /SQLite database without iqdb's images table \(its tables: posts, tags\)/);
      const partial = join(dir, 'partial.sqlite');
      const p = new Database(partial);
      p.exec('CREATE TABLE images (id INTEGER PRIMARY KEY, post_id INTEGER, sig BLOB)');
      p.close();
      expectRefusal(() => importIqdb(db, partial, { space: 9 }), 'foreign', /without iqdb's column\(s\) avglf1, avglf2, avglf3/);
      const haarseek = join(dir, 'copy-of-haarseek.db');
      copyFileSync(dbPath, haarseek);
      expectRefusal(() => importIqdb(db, haarseek, { space: 9 }), 'foreign', /is a haarseek database, not an iqdb one/);
      unchanged();
    });

    it('a truncated iqdb.sqlite', () => {
      const iqdb = readFileSync(IQDB);
      expectRefusal(() => importIqdb(db, write(iqdb.subarray(0, 12_000), 'cut.sqlite'), { space: 9 }), 'truncated', /header says 5 pages of 4096 bytes \(20480 bytes\), but the file has 12000 bytes/);
      expectRefusal(() => importIqdb(db, write(iqdb.subarray(0, 50), 'cut2.sqlite'), { space: 9 }), 'truncated', /100-byte header, the file has 50 bytes/);
      unchanged();
    });

    it('damaged iqdb rows', () => {
      const copy = join(dir, 'damaged-iqdb.sqlite');
      copyFileSync(IQDB, copy);
      const d = new Database(copy);
      d.prepare('UPDATE images SET sig = substr(sig, 1, 100) WHERE post_id = 117').run();
      d.close();
      expectRefusal(() => importIqdb(db, copy, { space: 9 }), 'damaged', /post 117 \(iqdb id 17\) has a sig of 100 bytes, expected a 240-byte blob/);
      unchanged();
    });
  });

  describe('other layouts and versions', () => {
    it("a 32-bit build's file (4-byte ids, 516-byte records), both forms", () => {
      expectRefusal(() => importIsk(db, write(to32Bit(all, 'savealldbs'))), 'layout', /iskdaemon file of a 32-bit build/, /4-byte image ids/);
      expectRefusal(() => importIsk(db, write(to32Bit(one, 'savedb')), { space: 1 }), 'layout', /32-bit build/);
      unchanged();
    });

    it('a Windows file (compilePlat 1), a big-endian file, an unknown version', () => {
      const windows = Buffer.from(all);
      windows.writeInt32LE(1, 12);
      expectRefusal(() => importIsk(db, write(windows)), 'layout', /written by iskdaemon on Windows \(header compilePlat = 1\)/);
      const big = Buffer.from(all);
      for (let k = 0; k < 16; k += 4) big.writeInt32BE(all.readInt32LE(k), k);
      expectRefusal(() => importIsk(db, write(big)), 'layout', /big-endian/);
      const v4 = Buffer.from(all);
      v4.writeInt32LE(4, 4);
      expectRefusal(() => importIsk(db, write(v4)), 'version', /format version 4; haarseek reads versions 1 \(iskdaemon 0\.5\.1\), 2 \(0\.6\) and 3/);
      unchanged();
    });
  });

  describe('damaged files, refused even after whole spaces were written (one transaction)', () => {
    const w = walk64(all, 'savealldbs');
    it('a coefficient changed in a record no longer matches the bucket section', () => {
      const bad = Buffer.from(all);
      const at = w.recordsAt[1][5] + 8 + 7 * 4;
      bad.writeInt32LE(bad.readInt32LE(at) > 0 ? 16_000 : -16_000, at);
      expectRefusal(() => importIsk(db, write(bad)), 'damaged', /the bucket section of space 7 does not list the coefficients its 12 image records hold/);
      unchanged();
    });
    it('out-of-range and repeated coefficients, a NaN average, ids out of order', () => {
      const zero = Buffer.from(all);
      zero.writeInt32LE(0, w.recordsAt[0][2] + 8 + 50 * 4);
      expectRefusal(() => importIsk(db, write(zero)), 'damaged', /image 103 in space 1 .* has coefficient 0 in its I signature, outside \+-1\.\.16383/);
      const twice = Buffer.from(all);
      twice.writeInt32LE(twice.readInt32LE(w.recordsAt[0][0] + 8), w.recordsAt[0][0] + 12);
      expectRefusal(() => importIsk(db, write(twice)), 'damaged', /image 101 in space 1 .* twice in its Y signature/);
      const nan = Buffer.from(all);
      nan.writeDoubleLE(Number.NaN, w.recordsAt[1][0] + 488 + 8);
      expectRefusal(() => importIsk(db, write(nan)), 'damaged', /image 2001 in space 7 .* non-finite I average/);
      const order = Buffer.from(all);
      order.writeBigInt64LE(105n, w.recordsAt[0][2]);
      expectRefusal(() => importIsk(db, write(order)), 'damaged', /image id 104 \(byte 406352\) in space 1 does not follow 105/);
      unchanged();
    });
    it('bytes after the last space', () => {
      expectRefusal(() => importIsk(db, write(Buffer.concat([all, Buffer.alloc(8)]))), 'damaged', /8 unexpected bytes follow the last database space \(from byte 822128 of 822136\)/);
      unchanged();
    });
    it('the same refusals through the sliced import', async () => {
      await expect(importIskAsync(db, write(Buffer.concat([all, Buffer.alloc(4)])), {}, { sliceMs: 0 })).rejects.toThrow(/unexpected bytes/);
      await expect(importIqdbAsync(db, join(GOLDEN_DIR, 'inputs/01.png'), { space: 9 })).rejects.toBeInstanceOf(ImportError);
      expect(db.inTransaction).toBe(false);
      unchanged();
    });
    it('an aborted sliced import rolls back', async () => {
      const ctl = new AbortController();
      const running = importIskAsync(db, ISK_ALL, {}, { sliceMs: 0, signal: ctl.signal });
      ctl.abort(new Error('stop'));
      await expect(running).rejects.toThrow('stop');
      expect(db.inTransaction).toBe(false);
      unchanged();
    });
  });

  describe('space selection', () => {
    it('a savedb file needs a space; a savealldbs file must hold the one asked for', () => {
      expectRefusal(() => importIsk(db, ISK_ONE), 'space', /single-space iskdaemon file \(savedb\/saveDbAs\), which does not record its space id/, /--space N/);
      expectRefusal(() => importIsk(db, ISK_ALL, { space: 3 }), 'space', /holds database spaces 1, 7; none is space 3/);
      unchanged();
    });
  });
});
