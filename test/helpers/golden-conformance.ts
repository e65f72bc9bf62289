import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/engine.ts';
import { toIskResults } from '../../src/index/scoring.ts';
import type { Signature } from '../../src/signature/types.ts';
import { goldenImages, goldenPixels, goldenScores, type GoldenMode } from './golden.ts';

export function describeGoldenConformance(engineName: string, makeEngine: () => Engine): void {
  describe(`golden conformance (${engineName} engine)`, () => {
    const signatures: Signature[] = [];
    let engine: Engine;

    beforeAll(async () => {
      engine = makeEngine();
      for (const image of goldenImages) signatures.push(engine.signatures.signatureFromRgb(await goldenPixels(image)));
    });

    it('decodes the exact golden pixels', async () => {
      for (const image of goldenImages) {
        const hash = createHash('sha256').update(await goldenPixels(image)).digest('hex');
        expect(hash, image.file).toBe(image.rgb_sha256);
      }
    });

    it('reproduces every coefficient set and avgl', () => {
      goldenImages.forEach((image, i) => {
        for (let c = 0; c < 3; c++) {
          expect(Array.from(signatures[i].coefs.subarray(c * 40, c * 40 + 40)), `${image.file} channel ${c}`).toEqual(image.sig[c]);
          expect(Math.abs(signatures[i].avgl[c] - image.avgl[c]), `${image.file} avgl ${c}`).toBeLessThan(1e-9);
        }
      });
    });

    for (const mode of Object.keys(goldenScores) as GoldenMode[]) {
      it(`ranks and scores like imgSeek in mode ${mode}`, () => {
        const index = engine.createIndex();
        signatures.forEach((sig, i) => index.add(i + 1, sig));
        for (const { query, ranked } of goldenScores[mode]) {
          const got = index.query(signatures[query - 1], {
            limit: 24,
            sketch: mode.startsWith('sketch1'),
            fast: mode.endsWith('fast1'),
          });
          expect(got.map(([id]) => id), `query ${query}`).toEqual(ranked.map(([id]) => id));
          got.forEach(([, raw], k) => expect(Math.abs(raw - ranked[k][1]), `query ${query} rank ${k}`).toBeLessThan(1e-6));
          toIskResults(got).forEach(([, score], k) => expect(score).toBeCloseTo(ranked[k][2], 4));
        }
      });
    }
  });
}

