import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadEngine } from '../../src/engine.ts';
import { importIqdb } from '../../src/import/import.ts';
import { IqdbFile } from '../../src/import/iqdb-reader.ts';
import { IndexCatalog } from '../../src/index/catalog.ts';
import type { Signature } from '../../src/signature/types.ts';
import { BIN_OF_INDEX, WEIGHTS } from '../../src/signature/weights.ts';
import { openWritable } from '../../src/store/open.ts';
import { StoreQueries } from '../../src/store/queries.ts';
import { IQDB, iqdbJson, tempDir } from './helpers.ts';

const hexOf = (v: number) => Buffer.from(new Float64Array([v]).buffer).reverse().toString('hex');
const f32 = Math.fround;

/**
 * iqdb's own query (danbooru/iqdb imgdb.cpp queryFromSignature) in float32, over the
 * signatures as haarseek stored them: grayscale images (|I| + |Q| < 0.006) are in the Y
 * buckets only, score = raw * 100 / -(weights of the query's non-empty buckets).
 */
function iqdbQuery(query: Signature, images: Map<number, Signature>): Array<[number, number]> {
  const gray = (s: Signature) => Math.abs(s.avgl[1]) + Math.abs(s.avgl[2]) < 0.006;
  const colors = (s: Signature) => (gray(s) ? 1 : 3);
  const w = (bin: number, c: number) => f32(WEIGHTS[0][bin * 3 + c]);
  const scores = new Map<number, number>();
  for (const [id, s] of images) {
    let score = 0;
    for (let c = 0; c < colors(query); c++) score = f32(score + w(0, c) * Math.abs(f32(s.avgl[c]) - query.avgl[c]));
    scores.set(id, score);
  }
  let scale = 0;
  for (let b = 0; b < 40; b++) {
    for (let c = 0; c < colors(query); c++) {
      const coef = query.coefs[c * 40 + b];
      const holders = [...images].filter(([, s]) => c < colors(s) && s.coefs.subarray(c * 40, c * 40 + 40).includes(coef)).map(([id]) => id);
      if (holders.length === 0) continue;
      const weight = w(BIN_OF_INDEX[Math.abs(coef)], c);
      scale = f32(scale - weight);
      for (const id of holders) scores.set(id, f32(scores.get(id)! - weight));
    }
  }
  const inv = f32(1 / scale);
  return [...scores].map(([id, s]) => [id, f32(f32(s * 100) * inv)] as [number, number]).sort((a, b) => b[1] - a[1]);
}

describe("importing danbooru/iqdb's iqdb.sqlite", () => {
  let dir: string;
  let db: Database.Database;
  let store: StoreQueries;
  const catalog = new IndexCatalog(() => loadEngine().createIndex());

  beforeAll(() => {
    dir = tempDir();
    db = openWritable(join(dir, 'haarseek.db'));
    const summary = importIqdb(db, IQDB, { space: 5 });
    expect(summary).toEqual({ file: IQDB, format: 'iqdb', spaces: [{ dbId: 5, fromSpace: null, images: 24, keywords: 0, replaced: 0 }], skipped: [] });
    store = new StoreQueries(db);
    catalog.reloadFrom(store);
  });
  afterAll(() => {
    for (const id of catalog.ids()) catalog.drop(id);
    db?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the reader decodes every row as the JSON records it (post ids, avgl bit for bit, signatures)', () => {
    const file = IqdbFile.open(IQDB);
    try {
      expect(file.rowCount).toBe(iqdbJson.posts.length);
      const rows = [];
      // The reader reuses one object per row: copy each as it comes.
      for (const im of file.images()) rows.push({ iqdbId: im.iqdbId, postId: im.postId, avgl: Array.from(im.avgl).map(hexOf), coefs: Array.from(im.coefs) });
      expect(rows).toEqual(
        iqdbJson.posts.map((p) => ({ iqdbId: p.iqdb_id, postId: p.post_id, avgl: p.avgl_ieee754_hex, coefs: p.sig.flat() })),
      );
    } finally {
      file.close();
    }
  });

  it('stores every post as an image of the space: same signature blob as iqdb\'s, avgl bit for bit, no size, no keywords', () => {
    expect(store.spaceIds()).toEqual([5]);
    for (const post of iqdbJson.posts) {
      const row = db.prepare('SELECT width, height, avgl_y, avgl_i, avgl_q, sig FROM images WHERE db_id = 5 AND image_id = ?').raw().get(post.post_id) as [number, number, number, number, number, Buffer];
      expect(row, `post ${post.post_id}`).toBeDefined();
      expect(row.slice(0, 2)).toEqual([0, 0]);
      expect(row.slice(2, 5).map((v) => hexOf(v as number))).toEqual(post.avgl_ieee754_hex);
      // iqdb stores exactly haarseek's blob: int16 LE, each channel ascending.
      expect(row[5].toString('hex')).toBe(post.sig_blob_hex);
      expect(store.keywordsOf(5, post.post_id)).toEqual([]);
    }
    expect(db.prepare('SELECT count(*) FROM images').pluck().get()).toBe(24);
    expect(db.prepare('SELECT op, db_id FROM changes').raw().all()).toEqual([['space', 5]]);
  });

  it("iqdb's own ranking and scores come back from the imported signatures (query 101, the real rows of its answer)", () => {
    const images = new Map(iqdbJson.posts.map((p) => [p.post_id, store.image(5, p.post_id)!.sig]));
    const ours = iqdbQuery(images.get(101)!, images);
    const theirs = iqdbJson.queries.query_hash101_after_reload_limit5.result_post_id_score;
    expect(iqdbJson.queries.query_file_01_limit5.result_post_id_score).toEqual(theirs);
    // limit24 is padded with junk rows from iqdb's uninitialised slots after post 109.
    const real = iqdbJson.queries.query_file_01_limit24.result_post_id_score.filter(([id]) => id >= 101 && id <= 124);
    expect(real.slice(0, theirs.length)).toEqual(theirs);
    expect(ours.slice(0, real.length).map(([id]) => id)).toEqual(real.map(([id]) => id));
    real.forEach(([, score], k) => expect(Math.abs(ours[k][1] - score), `post ${real[k][0]}`).toBeLessThan(1e-4));
  });

  it('queryImgID ranks the colour posts in iqdb\'s order (grayscale ones differ: iqdb scores them on Y only)', () => {
    const gray = new Set(iqdbJson.posts.filter((p) => p.iqdb_treats_as_grayscale).map((p) => p.post_id));
    const real = iqdbJson.queries.query_file_01_limit24.result_post_id_score.filter(([id]) => id >= 101 && id <= 124);
    const ranked = catalog.get(5)!.query(store.image(5, 101)!.sig, { limit: 24 });
    expect(ranked).toHaveLength(24);
    const colour = (ids: number[]) => ids.filter((id) => !gray.has(id));
    const theirs = colour(real.map(([id]) => id));
    expect(theirs.length).toBeGreaterThanOrEqual(6);
    expect(colour(ranked.map(([id]) => id)).slice(0, theirs.length)).toEqual(theirs);
  });
});
