import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadEngine } from '../../src/engine.ts';
import { ImageError } from '../../src/errors.ts';
import { rankVerified, type VerifiedRanking } from '../../src/query-stage/rank.ts';
import { buildCorpusIndex, cardPath, DEV_DIR, type CorpusIndex } from './corpus-index.ts';

/** Generous: these inputs take milliseconds; the bound only catches a runaway loop. */
const BOUND_MS = 5000;

describe('bad and odd query images', () => {
  const engine = loadEngine();
  let corpus: CorpusIndex;
  const rank = (bytes: Uint8Array, maxPixels?: number) =>
    rankVerified({
      bytes,
      index: corpus.index,
      signatures: engine.signatures,
      limit: 12,
      thumbnailOf: (id) => corpus.thumbnails.get(id),
      decodeLimits: maxPixels === undefined ? undefined : { maxInputBytes: 32 * 1024 * 1024, maxPixels },
    });

  beforeAll(async () => {
    corpus = await buildCorpusIndex(engine);
  });

  async function expectList(bytes: Uint8Array): Promise<VerifiedRanking> {
    const t0 = performance.now();
    const r = await rank(bytes);
    expect(performance.now() - t0).toBeLessThan(BOUND_MS);
    expect(r.results.length).toBeGreaterThan(0);
    expect(r.results.length).toBeLessThanOrEqual(12);
    for (let k = 1; k < r.results.length; k++) expect(r.results[k].score).toBeLessThanOrEqual(r.results[k - 1].score);
    for (const x of r.results) expect(Number.isFinite(x.score)).toBe(true);
    return r;
  }

  const solid = (width: number, height: number, rgb: [number, number, number]) =>
    sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });

  it('a 1x1 image gives a result list', async () => {
    await expectList(await solid(1, 1, [200, 30, 30]).png().toBuffer());
  });

  it('an all-white image gives a result list (the check cannot judge a flat image and is skipped)', async () => {
    const r = await expectList(await solid(640, 480, [255, 255, 255]).jpeg().toBuffer());
    expect(r.card).toBeUndefined();
  });

  it('a 20000x200 panorama gives a result list', async () => {
    const gradient = Buffer.alloc(20000 * 200 * 3);
    for (let x = 0; x < 20000; x++) {
      for (let y = 0; y < 200; y++) gradient.set([x % 256, (x >> 4) % 256, y], (y * 20000 + x) * 3);
    }
    const bytes = await sharp(gradient, { raw: { width: 20000, height: 200, channels: 3 } }).jpeg().toBuffer();
    await expectList(bytes);
  });

  it('a card filling the frame is found as itself', async () => {
    const r = await expectList(readFileSync(cardPath(1199)));
    expect(r.results[0].id).toBe(1199);
  });

  it('a photo without a card gives a list, with no rectified variant', async () => {
    const r = await expectList(readFileSync(join(DEV_DIR, 'originals/00002.jpg')));
    expect(r.card).toBeUndefined();
    expect(r.variants).not.toContain('rectified');
  });

  it('empty, truncated and non-image bytes are a clear ImageError', async () => {
    const jpeg = readFileSync(cardPath(66));
    for (const bytes of [new Uint8Array(0), jpeg.subarray(0, 200), Buffer.from('not an image at all')]) {
      const err = await rank(bytes).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ImageError);
      expect((err as Error).message).toMatch(/empty|could not be decoded/);
    }
  });

  it('an image over the pixel limit is refused before it is decoded', async () => {
    const bytes = await solid(4000, 3000, [10, 20, 30]).jpeg().toBuffer();
    await expect(rank(bytes, 1_000_000)).rejects.toThrow(/12000000 pixels; the limit is 1000000/);
  });
});
