import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadEngine, nativeEngine, tsEngine, type Engine } from '../../src/engine.ts';
import { decodeToRgb128 } from '../../src/image/decode.ts';
import { decodeForIngest } from '../../src/image/decode-ingest.ts';
import { decodeQuery } from '../../src/query-stage/decode-query.ts';
import { mergeBest, rankStored, rankVerified, type VerifiedRanking } from '../../src/query-stage/rank.ts';
import { checkEvidence, combinedScore } from '../../src/query-stage/score.ts';
import { THUMB_BYTES, thumbnailOf } from '../../src/query-stage/thumbnail.ts';
import { loadNativeAddon } from '../../src/signature/native-loader.ts';
import { buildCorpusIndex, cardPath, cardQuery, devQuery, DEV_ID_OFFSET, type CorpusIndex } from './corpus-index.ts';

/**
 * Phone photos of cards (one or two per deck) that the imgSeek ranking gets wrong at
 * rank 1 here; the first two not even in its top 10.
 */
const PHONE_MISSES = [109, 1183, 857, 1569, 2103, 115];

function expectSortedByScore(r: VerifiedRanking): void {
  for (let k = 1; k < r.results.length; k++) expect(r.results[k].score).toBeLessThanOrEqual(r.results[k - 1].score);
  for (const x of r.results) {
    expect(x.score).toBeGreaterThanOrEqual(0);
    expect(x.score).toBeLessThanOrEqual(100);
  }
}

describe('verified ranking on cards-dev', () => {
  const engine: Engine = loadEngine();
  let corpus: CorpusIndex;
  const rank = (bytes: Uint8Array, extra: Partial<Parameters<typeof rankVerified>[0]> = {}) =>
    rankVerified({ bytes, index: corpus.index, signatures: engine.signatures, limit: 10, thumbnailOf: (id) => corpus.thumbnails.get(id), ...extra });

  beforeAll(async () => {
    corpus = await buildCorpusIndex(engine);
  });

  for (const id of PHONE_MISSES) {
    it(`puts the card first for phone photo ${id}, which the plain signature misses`, async () => {
      const bytes = cardQuery(id, 'phone');
      const { rgb } = await decodeToRgb128(bytes);
      const plain = corpus.index.query(engine.signatures.signatureFromRgb(rgb), { limit: 10 });
      expect(plain[0][0], 'the imgSeek ranking already gets it right: pick another query').not.toBe(id);
      const verified = await rank(bytes);
      expect(verified.results[0].id).toBe(id);
      expect(verified.stage).not.toBe('plain');
      expect(verified.card, 'the card was not found').toBeDefined();
      expect(verified.results[0].check).toBeGreaterThan(0.9);
      expectSortedByScore(verified);
    });
  }

  it('stops after the plain query for a photo it verifies clearly, with the same first result', async () => {
    const bytes = devQuery(16, 'bright');
    const verified = await rank(bytes);
    expect(verified.stage).toBe('plain');
    expect(verified.results[0].id).toBe(16 + DEV_ID_OFFSET);
    expect(verified.results[0].score).toBeGreaterThan(90);
    expectSortedByScore(verified);
  });

  it('finds mirrored and cropped cards', async () => {
    for (const [id, distortion] of [[70, 'flip'], [1160, 'crop90'], [2080, 'rot3']] as const) {
      const verified = await rank(cardQuery(id, distortion));
      expect(verified.results[0].id, `${id} ${distortion}`).toBe(id);
    }
  });

  it('without thumbnails the check is skipped, not failed: best-variant imgSeek order, no check values', async () => {
    const bytes = cardQuery(1183, 'phone');
    const verified = await rank(bytes, { thumbnailOf: () => undefined });
    expect(verified.results.every((r) => r.check === undefined)).toBe(true);
    const raws = verified.results.map((r) => r.raw);
    expect(raws).toEqual([...raws].sort((a, b) => a - b));
    expectSortedByScore(verified);
    // The rectified card's signature alone finds it here.
    expect(verified.results[0].id).toBe(1183);
  });

  it('a candidate without a thumbnail is ranked as if its check had passed as well as the best one', async () => {
    const bytes = cardQuery(857, 'phone');
    const r = await rank(bytes, { thumbnailOf: (id) => (id === 857 ? undefined : corpus.thumbnails.get(id)) });
    const mine = r.results.find((x) => x.id === 857)!;
    expect(mine.check).toBeUndefined();
    const checked = r.results.filter((x) => x.check !== undefined);
    expect(checked.length).toBeGreaterThan(3);
    const best = Math.max(...checked.map((x) => checkEvidence(x.check!)));
    expect(mine.combined).toBeCloseTo(combinedScore(mine.raw, best), 9);
    // So no checked candidate with a worse imgSeek score ranks above it.
    for (const x of checked) if (x.raw > mine.raw) expect(x.combined).toBeLessThanOrEqual(mine.combined);
  });

  it('a card photographed filling the frame and a card original are found as themselves', async () => {
    const original = await rank(readFileSync(cardPath(1560)));
    expect(original.results[0].id).toBe(1560);
    expect(original.results[0].score).toBeGreaterThan(95);
  });

  it('a query by stored image re-ranks its imgSeek results with the thumbnails, itself first', async () => {
    const { rgb, width, height } = await decodeToRgb128(readFileSync(cardPath(1183)));
    const signature = engine.signatures.signatureFromRgb(rgb);
    const thumbnailOf = (id: number) => corpus.thumbnails.get(id);
    const r = rankStored({ index: corpus.index, signatures: engine.signatures, limit: 10, thumbnailOf, signature, thumbnail: corpus.thumbnails.get(1183), aspect: width / height });
    expect(r.results[0].id).toBe(1183);
    expect(r.results[0].check).toBeGreaterThan(0.98);
    expectSortedByScore(r);
    const plain = corpus.index.query(signature, { limit: 10 }).map(([id]) => id);
    const none = rankStored({ index: corpus.index, signatures: engine.signatures, limit: 10, thumbnailOf: () => undefined, signature, thumbnail: undefined, aspect: width / height });
    expect(none.results.map((x) => x.id)).toEqual(plain);
  });

  it('keyword restrictions (allowed ids) hold for every variant', async () => {
    const allowed = new Set([66, 67, 68, 1183 + 1, 2103]);
    const verified = await rank(cardQuery(1183, 'phone'), { allowed, cascade: false });
    expect(verified.results.length).toBeGreaterThan(0);
    for (const r of verified.results) expect(allowed.has(r.id)).toBe(true);
  });
});

describe('query stage pieces', () => {
  it("the query's plain pixels are exactly those ingest and the imgSeek ranking use", async () => {
    const bytes = cardQuery(1569, 'phone');
    const [query, plain, ingest] = await Promise.all([decodeQuery(bytes), decodeToRgb128(bytes), decodeForIngest(bytes)]);
    expect(Buffer.from(query.rgb.data).equals(Buffer.from(plain.rgb))).toBe(true);
    expect(Buffer.from(ingest.rgb).equals(Buffer.from(plain.rgb))).toBe(true);
    expect(query.aspect).toBeCloseTo(plain.width / plain.height, 12);
  });

  it('the thumbnail is 32x48 grey bytes from the 128x128 RGB (1,536 bytes)', async () => {
    const { rgb, thumbnail } = await decodeForIngest(readFileSync(cardPath(66)));
    expect(thumbnail).toHaveLength(THUMB_BYTES);
    expect(THUMB_BYTES).toBe(1536);
    expect(Buffer.from(thumbnailOf(rgb)).equals(Buffer.from(thumbnail))).toBe(true);
    // A flat red image: luma 0.299·255 ≈ 76 everywhere.
    const red = new Uint8Array(128 * 128 * 3);
    for (let i = 0; i < red.length; i += 3) red[i] = 255;
    expect([...new Set(thumbnailOf(red))]).toEqual([76]);
    expect(() => thumbnailOf(new Uint8Array(10))).toThrow(RangeError);
  });

  it('mergeBest keeps the best raw score per id and which list gave it', () => {
    const merged = mergeBest(
      [
        [[1, -10], [2, -8], [3, -1]],
        [[2, -12], [4, -9], [1, -2]],
      ],
      3,
    );
    expect(merged).toEqual([[2, -12, 1], [1, -10, 0], [4, -9, 1]]);
  });
});

describe.runIf(loadNativeAddon().ok)('both engines', () => {
  it('rank a phone photo identically (ids, scores, stage)', async () => {
    const bytes = cardQuery(2103, 'phone');
    const runs: VerifiedRanking[] = [];
    for (const engine of [tsEngine(), nativeEngine()]) {
      const corpus = await buildCorpusIndex(engine);
      runs.push(await rankVerified({ bytes, index: corpus.index, signatures: engine.signatures, limit: 10, thumbnailOf: (id) => corpus.thumbnails.get(id) }));
    }
    expect(runs[1].results.map((r) => r.id)).toEqual(runs[0].results.map((r) => r.id));
    runs[1].results.forEach((r, k) => expect(r.score).toBeCloseTo(runs[0].results[k].score, 6));
    expect(runs[1].stage).toBe(runs[0].stage);
  });
});
