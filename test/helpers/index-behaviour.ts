import { describe, expect, it } from 'vitest';
import type { ImageIndex, SignatureBatch } from '../../src/index/types.ts';
import { SIGNATURE_LENGTH, type Signature } from '../../src/signature/types.ts';
import { prng } from '../../scripts/lib/prng.ts';

/** A deterministic pseudo-random generator, so failures reproduce. */
export const rng = prng;

/**
 * A signature shaped like real ones: coefficients drawn mostly from the low
 * frequencies (where real images put their energy), 40 distinct per channel.
 */
export function syntheticSignature(random: () => number): Signature {
  const coefs = new Int32Array(SIGNATURE_LENGTH);
  for (let c = 0; c < 3; c++) {
    const chosen = new Set<number>();
    while (chosen.size < 40) {
      const row = Math.floor(random() ** 3 * 128);
      const col = Math.floor(random() ** 3 * 128);
      const index = row * 128 + col;
      if (index === 0 || chosen.has(index) || chosen.has(-index)) continue;
      chosen.add(random() < 0.5 ? index : -index);
    }
    coefs.set(Int32Array.from(chosen).sort(), c * 40);
  }
  return { coefs, avgl: Float64Array.of(random(), random() * 0.2 - 0.1, random() * 0.2 - 0.1) };
}

/** Packs signatures as the store reads them: flat arrays, coefficients as int16. */
export function toBatch(entries: ReadonlyArray<readonly [number, Signature]>): SignatureBatch {
  const batch: SignatureBatch = {
    count: entries.length,
    ids: new Float64Array(entries.length),
    avgl: new Float64Array(entries.length * 3),
    coefs: new Int16Array(entries.length * 120),
  };
  entries.forEach(([id, sig], k) => {
    batch.ids[k] = id;
    batch.avgl.set(sig.avgl, k * 3);
    batch.coefs.set(sig.coefs, k * 120);
  });
  return batch;
}

export function describeIndexBehaviour(engineName: string, createIndex: () => ImageIndex): void {
  describe(`image index behaviour (${engineName})`, () => {
    const random = rng(42);
    const sigs = Array.from({ length: 300 }, () => syntheticSignature(random));

    it('add, has, ids, avgl, size, replace, remove, clear', () => {
      const index = createIndex();
      sigs.slice(0, 10).forEach((sig, i) => index.add(10 - i, sig));
      expect(index.size).toBe(10);
      expect(index.ids()).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(index.has(3)).toBe(true);
      expect(Array.from(index.avgl(10)!)).toEqual(Array.from(sigs[0].avgl));
      index.add(10, sigs[50]);
      expect(index.size).toBe(10);
      expect(Array.from(index.avgl(10)!)).toEqual(Array.from(sigs[50].avgl));
      expect(index.query(sigs[50], { limit: 1 })[0][0]).toBe(10);
      expect(index.remove(10)).toBe(true);
      expect(index.remove(10)).toBe(false);
      expect(index.has(10)).toBe(false);
      expect(index.avgl(10)).toBeUndefined();
      expect(index.query(sigs[50], { limit: 20 }).map(([id]) => id)).not.toContain(10);
      index.clear();
      expect(index.size).toBe(0);
      expect(index.query(sigs[0], { limit: 5 })).toEqual([]);
    });

    it('limit 0 gives nothing, a limit over the size gives everything', () => {
      const index = createIndex();
      sigs.slice(0, 5).forEach((sig, i) => index.add(i + 1, sig));
      expect(index.query(sigs[0], { limit: 0 })).toEqual([]);
      expect(index.query(sigs[0], { limit: 100 })).toHaveLength(5);
    });

    it('results are sorted by score, ties by ascending id', () => {
      const index = createIndex();
      for (const id of [9, 3, 7, 1, 5]) index.add(id, sigs[0]);
      index.add(4, sigs[1]);
      const got = index.query(sigs[0], { limit: 6 });
      expect(got.slice(0, 5).map(([id]) => id)).toEqual([1, 3, 5, 7, 9]);
      expect(new Set(got.slice(0, 5).map(([, s]) => s)).size).toBe(1);
      expect(got[5][0]).toBe(4);
    });

    it('the allowed filter restricts results', () => {
      const index = createIndex();
      sigs.slice(0, 50).forEach((sig, i) => index.add(i + 1, sig));
      const got = index.query(sigs[0], { limit: 10, allowed: new Set([2, 4, 6]) });
      expect(got.map(([id]) => id).sort()).toEqual([2, 4, 6]);
    });

    it('ids up to 2^53 round-trip', () => {
      const index = createIndex();
      index.add(2 ** 53, sigs[0]);
      index.add(2 ** 53 - 1, sigs[1]);
      expect(index.query(sigs[0], { limit: 1 })[0][0]).toBe(2 ** 53);
      expect(index.ids()).toEqual([2 ** 53 - 1, 2 ** 53]);
    });

    it('after many removals (compaction), results equal a fresh index of the survivors', () => {
      const random2 = rng(7);
      const many = Array.from({ length: 8000 }, () => syntheticSignature(random2));
      const index = createIndex();
      many.forEach((sig, i) => index.add(i + 1, sig));
      for (let id = 1; id <= 8000; id++) if (id % 8 !== 0) index.remove(id);
      const fresh = createIndex();
      many.forEach((sig, i) => {
        if ((i + 1) % 8 === 0) fresh.add(i + 1, sig);
      });
      expect(index.size).toBe(1000);
      for (const q of many.slice(0, 20)) {
        for (const options of [{ limit: 10 }, { limit: 10, sketch: true }, { limit: 10, fast: true }]) {
          expect(index.query(q, options)).toEqual(fresh.query(q, options));
        }
      }
      // The index keeps working after compaction: adds and replacements land.
      index.add(5, many[4]);
      expect(index.query(many[4], { limit: 1 })[0][0]).toBe(5);
      expect(index.memoryBytes()).toBeGreaterThan(0);
    });
  });
}
