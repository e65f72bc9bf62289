import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEngine } from '../../src/engine.ts';
import { importIsk, sniffDatabaseFile } from '../../src/import/import.ts';
import { readIskHeader } from '../../src/import/isk-reader.ts';
import { IndexCatalog } from '../../src/index/catalog.ts';
import { toIskResults } from '../../src/index/scoring.ts';
import { openWritable } from '../../src/store/open.ts';
import { StoreQueries } from '../../src/store/queries.ts';
import { ISK_ALL, ISK_ONE, type IskJsonImage, iskJson, parseAll, tempDir, toVersion1, toVersion2 } from './helpers.ts';

const bitsOf = (v: number) => Buffer.from(new Float64Array([v]).buffer).toString('hex');

describe('reading iskdaemon 0.9.5 files: every field as the JSON records it', () => {
  it('the savealldbs file: header, form, spaces, and each image field by field', () => {
    expect(readFileSync(ISK_ALL).length).toBe(iskJson.size_bytes);
    const { header, form } = readIskHeader(ISK_ALL);
    expect(form).toBe('savealldbs');
    expect(header).toMatchObject({ iskVersion: iskJson.header_values.iskVersion, bindingLang: iskJson.header_values.bindingLang, compilePlat: iskJson.header_values.compilePlat, bytes: 16 });
    const { summary, spaces } = parseAll(ISK_ALL);
    expect(summary.bytes).toBe(iskJson.size_bytes);
    expect(spaces.map((s) => s.dbId)).toEqual(iskJson.spaces.map((s) => s.space));
    expect(spaces.map((s) => s.imageCount)).toEqual(iskJson.spaces.map((s) => s.image_count));
    let compared = 0;
    for (const [s, space] of iskJson.spaces.entries()) {
      expect(spaces[s].images.map((im) => im.id)).toEqual(space.images.map((im) => im.id));
      for (const [k, expected] of space.images.entries()) {
        const got = spaces[s].images[k];
        expect(got.width, `${expected.id} width`).toBe(expected.width);
        expect(got.height, `${expected.id} height`).toBe(expected.height);
        // avgl bit for bit, not within a tolerance.
        expect(got.avgl.map(bitsOf), `${expected.id} avgl`).toEqual(expected.avgl.map(bitsOf));
        expect(got.fileCoefs, `${expected.id} signature in stored order`).toEqual(expected.sig_stored_order);
        expect(got.coefs, `${expected.id} signature sorted`).toEqual(expected.sig_sorted);
        expect(got.keywords, `${expected.id} keywords in stored order`).toEqual(expected.keywords_stored_order);
        compared++;
      }
    }
    expect(compared).toBe(24);
  });

  it('sniffDatabaseFile tells iskdaemon files from SQLite ones', () => {
    expect(sniffDatabaseFile(ISK_ALL)).toBe('isk');
    expect(sniffDatabaseFile(ISK_ONE)).toBe('isk');
    expect(sniffDatabaseFile(join(ISK_ALL, '../iqdb.sqlite'))).toBe('sqlite');
    expect(sniffDatabaseFile(join(ISK_ALL, '../iqdb-uploads/01.jpg'))).toBeNull();
  });

  it('the savedb file holds space 1 of the savealldbs file, without a space id', () => {
    expect(readIskHeader(ISK_ONE).form).toBe('savedb');
    const { summary, spaces } = parseAll(ISK_ONE);
    expect(summary.bytes).toBe(iskJson.also_written['iskdaemon-0.9.5-savedb-space1.isk'].size_bytes);
    expect(spaces).toHaveLength(1);
    expect(spaces[0].dbId).toBeNull();
    const all = parseAll(ISK_ALL).spaces[0];
    expect(spaces[0].images).toEqual(all.images);
  });

  it('keywords: the added sets (JSON keywords_added) in hash-set order', () => {
    const { spaces } = parseAll(ISK_ALL);
    for (const [key, added] of Object.entries(iskJson.keywords_added)) {
      if (key === 'note') continue;
      const [space, id] = key.split('/').map(Number);
      const image = spaces.find((s) => s.dbId === space)!.images.find((im) => im.id === id)!;
      expect([...image.keywords].sort((a, b) => a - b)).toEqual([...(added as number[])].sort((a, b) => a - b));
    }
    const tagged = spaces.flatMap((s) => s.images.filter((im) => im.keywords.length > 0).map((im) => `${s.dbId}/${im.id}`));
    expect(tagged.sort()).toEqual(Object.keys(iskJson.keywords_added).filter((k) => k !== 'note').sort());
  });

  it('iskVersion 2 (0.6) and 1 (0.5.1) files, built from the real one, read the same content', () => {
    const dir = tempDir();
    try {
      const v2 = join(dir, 'v2.isk');
      const v1 = join(dir, 'v1.isk');
      writeFileSync(v2, toVersion2(readFileSync(ISK_ALL)));
      writeFileSync(v1, toVersion1(readFileSync(ISK_ALL), 'savealldbs'));
      const real = parseAll(ISK_ALL).spaces;
      expect(readIskHeader(v2).header).toMatchObject({ iskVersion: 2, isTrial: 0, bytes: 20 });
      expect(parseAll(v2).spaces).toEqual(real);
      expect(readIskHeader(v1).header).toMatchObject({ iskVersion: 1, bytes: 20 });
      // Version 1 records had no keywords.
      expect(parseAll(v1).spaces).toEqual(real.map((s) => ({ ...s, images: s.images.map((im) => ({ ...im, keywords: [] })) })));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('importing the savealldbs file into a haarseek store', () => {
  let dir: string;
  let db: Database.Database;
  let store: StoreQueries;
  const catalog = new IndexCatalog(() => loadEngine().createIndex());

  beforeAll(() => {
    dir = tempDir();
    db = openWritable(join(dir, 'haarseek.db'));
    const summary = importIsk(db, ISK_ALL);
    expect(summary).toEqual({
      file: ISK_ALL,
      format: 'isk-savealldbs',
      spaces: [
        { dbId: 1, fromSpace: 1, images: 12, keywords: 6, replaced: 0 },
        { dbId: 7, fromSpace: 7, images: 12, keywords: 3, replaced: 0 },
      ],
      skipped: [],
    });
    store = new StoreQueries(db);
    catalog.reloadFrom(store);
  });
  afterAll(() => {
    for (const id of catalog.ids()) catalog.drop(id);
    db?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores every image with the writer\'s columns: id, size, avgl bit for bit, sorted signature, keywords', () => {
    expect(store.spaceIds()).toEqual([1, 7]);
    for (const space of iskJson.spaces) {
      const rows = db.prepare('SELECT image_id FROM images WHERE db_id = ? ORDER BY image_id').pluck().all(space.space);
      expect(rows).toEqual(space.images.map((im) => im.id));
      for (const expected of space.images as IskJsonImage[]) {
        const stored = store.image(space.space, expected.id)!;
        expect([stored.width, stored.height]).toEqual([expected.width, expected.height]);
        expect(Array.from(stored.sig.avgl).map(bitsOf)).toEqual(expected.avgl.map(bitsOf));
        expect([0, 1, 2].map((c) => Array.from(stored.sig.coefs.subarray(c * 40, c * 40 + 40)))).toEqual(expected.sig_sorted);
        expect(store.keywordsOf(space.space, expected.id)).toEqual([...expected.keywords_stored_order].sort((a, b) => a - b));
      }
    }
  });

  it('logs one space change per imported space, so running readers reload them', () => {
    expect(db.prepare('SELECT op, db_id, image_id FROM changes ORDER BY seq').raw().all()).toEqual([
      ['space', 1, null],
      ['space', 7, null],
    ]);
    const changes = store.changesSince(0)!;
    expect(changes.changes.map((c) => [c.op, c.dbId])).toEqual([
      ['space', 1],
      ['space', 7],
    ]);
  });

  it('the loaded index ranks as iskdaemon did where its ranking is exact (numres = space size): ids, order, raw and API scores', () => {
    const exact = iskJson.queries_after_load.results.filter((r) => /, 12, /.test(r.call));
    expect(exact.length).toBe(4);
    for (const result of exact) {
      const [, dbId, id, numres, sketch, fast] = /queryImgID\((\d+), (\d+), (\d+), (\d), (true|false)\)/.exec(result.call)!.map((v) => (v === 'true' ? 1 : v === 'false' ? 0 : Number(v)));
      const sig = store.image(dbId, id)!.sig;
      const ranked = catalog.get(dbId)!.query(sig, { limit: numres, sketch: sketch === 1, fast: fast === 1 });
      // imgdb returns worst first; haarseek best first.
      const expected = [...result.result_id_score_pairs].reverse();
      expect(ranked.map(([rid]) => rid), result.call).toEqual(expected.map(([rid]) => rid));
      ranked.forEach(([, raw], k) => expect(Math.abs(raw - expected[k][1]), `${result.call} #${k}`).toBeLessThan(1e-6));
      const api = toIskResults(ranked);
      expect(api.map(([rid]) => rid)).toEqual(result.api_view.map(([rid]) => rid));
      api.forEach(([, score], k) => expect(Math.abs(score - result.api_view[k][1])).toBeLessThan(1e-6));
    }
  });

  it('with a smaller numres it returns the true best (iskdaemon\'s faulty heap let the last image in: JSON raw_output_note)', () => {
    for (const result of iskJson.queries_after_load.results.filter((r) => /, [56], /.test(r.call))) {
      const [, dbId, id, numres] = /queryImgID\((\d+), (\d+), (\d+)/.exec(result.call)!.map(Number);
      const sig = store.image(dbId, id)!.sig;
      const full = catalog.get(dbId)!.query(sig, { limit: 12 });
      const ranked = catalog.get(dbId)!.query(sig, { limit: numres });
      expect(ranked).toEqual(full.slice(0, numres));
      // iskdaemon's answer = the true best numres-1 plus the last id of the space.
      const theirs = [...result.result_id_score_pairs].reverse().map(([rid]) => rid);
      expect(theirs.slice(0, -1)).toEqual(full.slice(0, numres - 1).map(([rid]) => rid));
      expect(theirs[theirs.length - 1]).toBe(Math.max(...full.map(([rid]) => rid)));
    }
  });

  it('the savedb file loads into the space given, as iskdaemon\'s loaddb(1, file) did, and answers its query', () => {
    const summary = importIsk(db, ISK_ONE, { space: 3 });
    expect(summary.spaces).toEqual([{ dbId: 3, fromSpace: null, images: 12, keywords: 6, replaced: 0 }]);
    catalog.reloadFrom(store, new Set([3]));
    const [query] = iskJson.also_written['iskdaemon-0.9.5-savedb-space1.isk'].query_after_load;
    const full = catalog.get(3)!.query(store.image(3, 101)!.sig, { limit: 12 });
    const theirs = [...query.result_id_score_pairs].reverse();
    expect(full.slice(0, 4).map(([rid]) => rid)).toEqual(theirs.slice(0, 4).map(([rid]) => rid));
    for (const [rid, raw] of theirs) expect(Math.abs(full.find(([fid]) => fid === rid)![1] - raw)).toBeLessThan(1e-6);
    expect(db.prepare('SELECT count(*) FROM images WHERE db_id = 3').pluck().get()).toBe(12);
    expect(db.prepare("SELECT op, db_id FROM changes ORDER BY seq DESC LIMIT 1").raw().get()).toEqual(['space', 3]);
  });

  it('importing again replaces the spaces (as iskdaemon\'s loaddb resets a space), keeping others', () => {
    db.prepare('INSERT INTO images (db_id, image_id, width, height, avgl_y, avgl_i, avgl_q, sig) SELECT 7, image_id + 100000, width, height, avgl_y, avgl_i, avgl_q, sig FROM images WHERE db_id = 7').run();
    const summary = importIsk(db, ISK_ALL, { space: 7 });
    expect(summary.spaces).toEqual([{ dbId: 7, fromSpace: 7, images: 12, keywords: 3, replaced: 24 }]);
    expect(summary.skipped).toEqual([1]);
    expect(db.prepare('SELECT db_id, count(*) FROM images GROUP BY db_id ORDER BY db_id').raw().all()).toEqual([
      [1, 12],
      [3, 12],
      [7, 12],
    ]);
  });
});
